package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// TestStartupStreamsBinary runs "shoal server --create-streams
// orders:4,events:ON_DEMAND --config FILE" (the file naming a stream with a
// retention period, tags and a consumer), with CREATING and UPDATING
// delays: once the "shoal listening" line is out, the streams are there
// and ACTIVE, with their shape. A restart on the same data directory finds
// them (a stream named with another shard count is left as it is, with a
// warning), and a bad spec is refused at start-up, naming it.
func TestStartupStreamsBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shoal binary")
	}
	logs := newLogBook(t)
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conf := filepath.Join(t.TempDir(), "shoal.json")
	if err := os.WriteFile(conf, []byte(`{
		"admin-addr": "off", "create-delay": "100ms", "update-delay": "50ms", "consumer-create-delay": "50ms",
		"streams": [{"name": "audit", "shards": 2, "retentionHours": 72, "tags": {"team": "sec"}, "consumers": ["siem"]}]
	}`), 0o600); err != nil {
		t.Fatal(err)
	}

	check := func(c *kinesis.Client) map[string]*types.StreamDescriptionSummary {
		t.Helper()
		got := map[string]*types.StreamDescriptionSummary{}
		for _, name := range []string{"orders", "events", "audit"} {
			out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
			if err != nil {
				t.Fatalf("DescribeStreamSummary %s: %v", name, err)
			}
			s := out.StreamDescriptionSummary
			if s.StreamStatus != types.StreamStatusActive {
				t.Errorf("%s is %s right after the listening line, want ACTIVE", name, s.StreamStatus)
			}
			got[name] = s
		}
		if s := got["orders"]; s.StreamModeDetails.StreamMode != types.StreamModeProvisioned || aws.ToInt32(s.OpenShardCount) != 4 {
			t.Errorf("orders: %s with %d shards, want PROVISIONED with 4", s.StreamModeDetails.StreamMode, aws.ToInt32(s.OpenShardCount))
		}
		if s := got["events"]; s.StreamModeDetails.StreamMode != types.StreamModeOnDemand {
			t.Errorf("events: %s, want ON_DEMAND", s.StreamModeDetails.StreamMode)
		}
		s := got["audit"]
		if aws.ToInt32(s.OpenShardCount) != 2 || aws.ToInt32(s.RetentionPeriodHours) != 72 || aws.ToInt32(s.ConsumerCount) != 1 {
			t.Errorf("audit: %d shards, %d hours, %d consumers; want 2, 72 and 1", aws.ToInt32(s.OpenShardCount), aws.ToInt32(s.RetentionPeriodHours), aws.ToInt32(s.ConsumerCount))
		}
		tags, err := c.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String("audit")})
		if err != nil {
			t.Fatal(err)
		}
		if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" || aws.ToString(tags.Tags[0].Value) != "sec" {
			t.Errorf("audit's tags %+v, want team=sec", tags.Tags)
		}
		cons, err := c.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: s.StreamARN})
		if err != nil {
			t.Fatal(err)
		}
		if len(cons.Consumers) != 1 || aws.ToString(cons.Consumers[0].ConsumerName) != "siem" || cons.Consumers[0].ConsumerStatus != types.ConsumerStatusActive {
			t.Errorf("audit's consumers %+v, want siem, ACTIVE", cons.Consumers)
		}
		return got
	}

	p, listening := startTLSProc(t, logs, "first", dataDir, "--config", conf, "--create-streams", "orders:4,events:ON_DEMAND")
	first := check(servertest.Client(endpointsOf(t, listening)[0]))
	if _, took, ok := p.terminate(gracefulTimeout); !ok {
		t.Fatalf("the server did not exit within %v of SIGTERM", took)
	}

	// Again on the same data: nothing is created; orders named with 3
	// shards stays at 4, with a warning.
	p, listening = startTLSProc(t, logs, "again", dataDir, "--config", conf, "--create-streams", "orders:3,events:ON_DEMAND")
	again := check(servertest.Client(endpointsOf(t, listening)[0]))
	for name, s := range first {
		if !aws.ToTime(s.StreamCreationTimestamp).Equal(aws.ToTime(again[name].StreamCreationTimestamp)) {
			t.Errorf("%s was made again on restart", name)
		}
	}
	p.waitFor(t, "the shape warning", func(l tlsLogLine) bool {
		return l["level"] == "warn" && strings.Contains(l.msg(), "another shape") && l["stream"] == "orders"
	})
	if _, took, ok := p.terminate(gracefulTimeout); !ok {
		t.Fatalf("the server did not exit within %v of SIGTERM", took)
	}

	// Bad specs: refused before listening, with the bad part named; from
	// the flag and from the environment.
	bin := shoalBinary(t)
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{args: []string{"--create-streams", "orders:0"}, want: `--create-streams "orders:0"`},
		{args: []string{"--create-streams", "ok,orders:abc"}, want: `unknown mode "abc"`},
		{env: "SHOAL_CREATE_STREAMS=:3", want: `--create-streams ":3": stream name is empty`},
	} {
		args := append([]string{"server", "--storage", "memory", "--addr", "127.0.0.1:0", "--admin-addr", "off", "--data-dir", t.TempDir()}, tc.args...)
		cmd := exec.CommandContext(ctx, bin, args...)
		if tc.env != "" {
			cmd.Env = append(os.Environ(), tc.env)
		}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "shoal listening") {
			t.Errorf("shoal %s (%s): %v, output %q; want a refusal saying %q", strings.Join(tc.args, " "), tc.env, err, out, tc.want)
		}
	}
}

// TestDockerImage builds the image of the Dockerfile at the repository's
// root and checks that its entrypoint runs "shoal server" and that
// SHOAL_CREATE_STREAMS and extra flags reach it: a bad spec is refused,
// naming it. It needs a Docker daemon and skips where "docker info" fails
// (CI machines have none).
func TestDockerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker command: the image is not built")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker daemon answers (docker info: %v): the image is not built\n%s", err, lastLines(string(out), 3))
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	tag := "shoal-test:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	build := exec.CommandContext(ctx, "docker", "build", "-t", tag, root)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, lastLines(string(out), 40))
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-e", "SHOAL_CREATE_STREAMS=orders:0", tag}, `--create-streams "orders:0"`},
		{[]string{tag, "--create-streams", "orders:abc"}, `unknown mode "abc"`},
	} {
		out, err := exec.CommandContext(ctx, "docker", append([]string{"run", "--rm"}, tc.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("docker run %s: %v, output %q; want a refusal saying %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
