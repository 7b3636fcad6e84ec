package audit

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fullRecord sets every member.
func fullRecord() *Record {
	return &Record{
		EventVersion: EventVersion,
		UserIdentity: UserIdentity{Type: "IAMUser", PrincipalID: "AIDAEXAMPLE", ARN: "arn:aws:iam::123456789012:user/alice",
			AccountID: "123456789012", AccessKeyID: "AKIAEXAMPLE", UserName: "alice"},
		// Not UTC, with nanoseconds: written as UTC, whole seconds.
		EventTime:         time.Date(2024, 5, 6, 9, 8, 9, 987654321, time.FixedZone("CEST", 2*3600)),
		EventSource:       EventSource,
		EventName:         "PutRecords",
		AWSRegion:         "eu-west-1",
		SourceIPAddress:   "192.0.2.7",
		UserAgent:         "aws-sdk-go-v2/1.48.0 <&>",
		ErrorCode:         "ResourceNotFoundException",
		ErrorMessage:      "Stream orders under account 123456789012 not found.",
		RequestParameters: map[string]any{"streamName": "orders", "recordsCount": 3},
		ResponseElements:  map[string]any{"failedRecordCount": 0},
		RequestID:         "req-1",
		EventID:           "ev-1",
		ReadOnly:          false,
		Resources: []Resource{{AccountID: "123456789012", Type: ResourceTypeStream,
			ARN: "arn:aws:kinesis:eu-west-1:123456789012:stream/orders"}},
		EventType:          EventType,
		ManagementEvent:    false,
		RecipientAccountID: "123456789012",
		EventCategory:      CategoryData,
		TLSDetails:         &TLSDetails{TLSVersion: "TLSv1.3", CipherSuite: "TLS_AES_128_GCM_SHA256", ClientProvidedHostHeader: "kinesis.local"},
	}
}

func encodeLine(t testing.TB, r *Record) []byte {
	t.Helper()
	var e lineEncoder
	if err := e.encode(r); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(e.bytes())
}

func decodeObject(t *testing.T, line []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", line, err)
	}
	return m
}

func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func TestRecordJSONNames(t *testing.T) {
	line := encodeLine(t, fullRecord())
	if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("want one line ending in a newline, got %q", line)
	}
	m := decodeObject(t, line)
	want := []string{"awsRegion", "errorCode", "errorMessage", "eventCategory", "eventID", "eventName", "eventSource",
		"eventTime", "eventType", "eventVersion", "managementEvent", "readOnly", "recipientAccountId", "requestID",
		"requestParameters", "resources", "responseElements", "sourceIPAddress", "tlsDetails", "userAgent", "userIdentity"}
	if got := keys(m); !slices.Equal(got, want) {
		t.Errorf("members:\n got %v\nwant %v", got, want)
	}
	if got, want := keys(m["userIdentity"].(map[string]any)), []string{"accessKeyId", "accountId", "arn", "principalId", "type", "userName"}; !slices.Equal(got, want) {
		t.Errorf("userIdentity members %v, want %v", got, want)
	}
	if got, want := keys(m["resources"].([]any)[0].(map[string]any)), []string{"ARN", "accountId", "type"}; !slices.Equal(got, want) {
		t.Errorf("resources members %v, want %v", got, want)
	}
	if got, want := keys(m["tlsDetails"].(map[string]any)), []string{"cipherSuite", "clientProvidedHostHeader", "tlsVersion"}; !slices.Equal(got, want) {
		t.Errorf("tlsDetails members %v, want %v", got, want)
	}
	if got := m["eventTime"]; got != "2024-05-06T07:08:09Z" {
		t.Errorf("eventTime %v, want 2024-05-06T07:08:09Z", got)
	}
	if m["readOnly"] != false || m["managementEvent"] != false {
		t.Errorf("booleans: readOnly %v managementEvent %v", m["readOnly"], m["managementEvent"])
	}
	if got := m["requestParameters"].(map[string]any)["recordsCount"]; got != 3.0 {
		t.Errorf("recordsCount %v", got)
	}
	// CloudTrail's member order, and no HTML escaping of the user agent.
	order := []string{"eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
		"sourceIPAddress", "userAgent", "errorCode", "errorMessage", "requestParameters", "responseElements",
		"requestID", "eventID", "readOnly", "resources", "eventType", "managementEvent", "recipientAccountId",
		"eventCategory", "tlsDetails"}
	last := -1
	for _, k := range order {
		i := bytes.Index(line, []byte(`"`+k+`":`))
		if i < last {
			t.Errorf("%s out of order in %s", k, line)
		}
		last = i
	}
	if !bytes.Contains(line, []byte(`"userAgent":"aws-sdk-go-v2/1.48.0 <&>"`)) {
		t.Errorf("user agent escaped: %s", line)
	}
}

func TestRecordJSONOmitEmpty(t *testing.T) {
	r := &Record{EventName: "ListStreams", UserIdentity: AnonymousIdentity()}
	m := decodeObject(t, encodeLine(t, r))
	for _, k := range []string{"errorCode", "errorMessage", "resources", "tlsDetails"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present in a record without it", k)
		}
	}
	for _, k := range []string{"requestParameters", "responseElements"} {
		if v, ok := m[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	for _, k := range []string{"awsRegion", "sourceIPAddress", "userAgent", "requestID", "eventID", "recipientAccountId"} {
		if v, ok := m[k]; !ok || v != "" {
			t.Errorf("%s = %v (present %v), want \"\"", k, v, ok)
		}
	}
	ui := m["userIdentity"].(map[string]any)
	if got, want := keys(ui), []string{"accountId", "principalId", "type"}; !slices.Equal(got, want) {
		t.Errorf("anonymous userIdentity members %v, want %v", got, want)
	}
	if ui["type"] != "AWSAccount" || ui["accountId"] != "ANONYMOUS_PRINCIPAL" || ui["principalId"] != "" {
		t.Errorf("anonymous identity %v", ui)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	in := fullRecord()
	line, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Record
	if err := json.Unmarshal(line, &out); err != nil {
		t.Fatal(err)
	}
	if !out.EventTime.Equal(in.EventTime.Truncate(time.Second)) {
		t.Errorf("eventTime %v, want %v", out.EventTime, in.EventTime.Truncate(time.Second))
	}
	out.EventTime, in.EventTime = time.Time{}, time.Time{}
	again, _ := json.Marshal(out)
	want, _ := json.Marshal(in)
	if !bytes.Equal(again, want) {
		t.Errorf("round trip:\n got %s\nwant %s", again, want)
	}
	if bytes.HasSuffix(line, []byte("\n")) {
		t.Error("MarshalJSON ends in a newline")
	}
}

func TestClassification(t *testing.T) {
	for _, c := range []struct {
		op             string
		data, readOnly bool
	}{
		{"PutRecord", true, false},
		{"PutRecords", true, false},
		{"GetRecords", true, true},
		{"GetShardIterator", true, true},
		{"SubscribeToShard", true, true},
		{"CreateStream", false, false},
		{"DeleteStream", false, false},
		{"DescribeStream", false, true},
		{"DescribeStreamSummary", false, true},
		{"DescribeStreamConsumer", false, true},
		{"DescribeLimits", false, true},
		{"ListStreams", false, true},
		{"ListShards", false, true},
		{"ListTagsForStream", false, true},
		{"GetResourcePolicy", false, true},
		{"MergeShards", false, false},
		{"SplitShard", false, false},
		{"UpdateShardCount", false, false},
		{"RegisterStreamConsumer", false, false},
		{"AddTagsToStream", false, false},
		{"StartStreamEncryption", false, false},
		{"EnableEnhancedMonitoring", false, false},
	} {
		if got := IsDataEvent(c.op); got != c.data {
			t.Errorf("IsDataEvent(%s) = %v", c.op, got)
		}
		if got := ReadOnly(c.op); got != c.readOnly {
			t.Errorf("ReadOnly(%s) = %v", c.op, got)
		}
		r := NewRecord(c.op)
		wantCat := CategoryManagement
		if c.data {
			wantCat = CategoryData
		}
		if r.EventCategory != wantCat || r.ManagementEvent == c.data || r.ReadOnly != c.readOnly ||
			r.EventVersion != "1.11" || r.EventSource != "kinesis.amazonaws.com" || r.EventType != "AwsApiCall" {
			t.Errorf("NewRecord(%s) = %+v", c.op, r)
		}
	}
}

func TestClassifyKeepsCallerValues(t *testing.T) {
	r := &Record{EventName: "GetRecords", EventCategory: CategoryManagement, EventVersion: "1.08"}
	r.classify()
	if r.EventCategory != CategoryManagement || r.EventVersion != "1.08" || r.ReadOnly || r.ManagementEvent {
		t.Errorf("caller's members changed: %+v", r)
	}
	if id := NewRecord("ListStreams").EventID; id != "" {
		t.Errorf("NewRecord set EventID %q: that is the writer's job, off the request path", id)
	}
}

func TestNewEventID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := newEventID()
		if !uuid.MatchString(id) || seen[id] {
			t.Fatalf("event id %q: want distinct version 4 UUIDs", id)
		}
		seen[id] = true
	}
}

func TestTLSDetailsOf(t *testing.T) {
	if TLSDetailsOf(nil, "h") != nil {
		t.Error("plain HTTP has tlsDetails")
	}
	for _, c := range []struct {
		version, suite uint16
		wantV, wantS   string
	}{
		{tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, "TLSv1.3", "TLS_AES_128_GCM_SHA256"},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305"},
	} {
		got := TLSDetailsOf(&tls.ConnectionState{Version: c.version, CipherSuite: c.suite}, "kinesis.local:4567")
		want := TLSDetails{TLSVersion: c.wantV, CipherSuite: c.wantS, ClientProvidedHostHeader: "kinesis.local:4567"}
		if *got != want {
			t.Errorf("got %+v, want %+v", *got, want)
		}
	}
	for id, name := range openSSLSuites {
		if strings.HasPrefix(name, "TLS_") || tls.CipherSuiteName(id) == name {
			t.Errorf("suite %#x maps to %q, not an OpenSSL name", id, name)
		}
	}
}
