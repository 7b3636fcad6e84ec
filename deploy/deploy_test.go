package deploy_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	consumerprom "github.com/shoalstream/shoal/consumer/prommetrics"
	fanoutprom "github.com/shoalstream/shoal/fanout/prommetrics"
	producerprom "github.com/shoalstream/shoal/producer/prommetrics"
	serverprom "github.com/shoalstream/shoal/server/prommetrics"
)

const (
	dashboardFile = "grafana/shoal.json"
	alertsFile    = "prometheus/alerts.yml"
	readmeFile    = "README.md"
)

// sourceDirs are read for metrics declared in their source: package main of
// the shoal binary (cannot be imported), and server/prommetrics for the
// metrics of other platforms than the test's (RegisterDiskFree is Linux's).
var sourceDirs = []string{"../cmd/shoal", "../server/prommetrics"}

// exported is a metric the code exports: where it comes from and its label
// names (nil: not known, any label passes).
type exported struct {
	source string
	labels map[string]bool
}

// targetLabels are the labels Prometheus adds to every series it scrapes;
// le and quantile are those of histogram buckets and summary quantiles.
var targetLabels = set("job", "instance", "le", "quantile", "__name__")

// recorder is a fresh registry that remembers the collectors registered
// with it.
type recorder struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func newRecorder() *recorder { return &recorder{Registry: prometheus.NewRegistry()} }

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registry.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
	r.Registry.MustRegister(cs...)
}

// buffer is a producer buffer for RegisterBuffer.
type buffer struct{}

func (buffer) BufferedRecords() int { return 0 }
func (buffer) BufferedBytes() int64 { return 0 }

// exportedMetrics returns every metric name the code exports, by Describe
// of every collector the four prommetrics packages register (with the
// label options an application sets: the dashboard filters on them), of
// the Go and process collectors the admin listener adds, and the metrics
// cmd/shoal declares itself.
func exportedMetrics(t *testing.T) map[string]exported {
	t.Helper()
	out := map[string]exported{}
	sources := []struct {
		name  string
		build func(*recorder)
	}{
		{"server/prommetrics", func(r *recorder) {
			serverprom.New(r)
			serverprom.RegisterDiskFree(r, t.TempDir()) // nothing but on Linux: see sourceMetrics below
		}},
		{"producer/prommetrics", func(r *recorder) { producerprom.New(r, "orders").RegisterBuffer(buffer{}) }},
		{"consumer/prommetrics", func(r *recorder) {
			consumerprom.New(r, consumerprom.WithApplication("app"), consumerprom.WithStream("orders"))
		}},
		{"fanout/prommetrics", func(r *recorder) {
			fanoutprom.New(r, fanoutprom.WithConsumer("audit"), fanoutprom.WithStream("orders"))
		}},
		{"Go and process collectors (cmd/shoal/admin.go)", func(r *recorder) {
			r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		}},
	}
	for _, src := range sources {
		r := newRecorder()
		src.build(r)
		n := 0
		for _, c := range r.collectors {
			for _, d := range describe(c) {
				name, labels, err := parseDesc(d.String())
				if err != nil {
					t.Fatalf("%s: %v", src.name, err)
				}
				if _, dup := out[name]; !dup {
					out[name] = exported{source: src.name, labels: labels}
					n++
				}
			}
		}
		if n == 0 {
			t.Fatalf("%s: no metric described", src.name)
		}
	}
	for _, dir := range sourceDirs {
		names, err := sourceMetrics(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			if _, dup := out[name]; !dup {
				out[name] = exported{source: strings.TrimPrefix(dir, "../") + " (source)"}
			}
		}
	}
	return out
}

func describe(c prometheus.Collector) []*prometheus.Desc {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var out []*prometheus.Desc
	for d := range ch {
		out = append(out, d)
	}
	return out
}

// parseDesc reads the name and label names of a metric from the String of
// its Desc:
//
//	Desc{fqName: "x", help: "...", unit: "", constLabels: {a="v"}, variableLabels: {b,c(d)}}
//
// (fields read by name; ones it does not know are skipped).
func parseDesc(s string) (name string, labels map[string]bool, err error) {
	rest, ok := strings.CutPrefix(s, "Desc{")
	if !ok {
		return "", nil, fmt.Errorf("Desc.String() %q: no Desc{", s)
	}
	labels = map[string]bool{}
	for rest != "}" {
		key, after, ok := strings.Cut(rest, ": ")
		if !ok {
			return "", nil, fmt.Errorf("Desc.String() %q: want field: value at %q", s, rest)
		}
		var value string
		switch {
		case strings.HasPrefix(after, `"`):
			value, err = strconv.QuotedPrefix(after)
			if err != nil {
				return "", nil, fmt.Errorf("Desc.String() %q: field %s: %v", s, key, err)
			}
		case strings.HasPrefix(after, "{"):
			end := closingBrace(after)
			if end < 0 {
				return "", nil, fmt.Errorf("Desc.String() %q: field %s: no closing }", s, key)
			}
			value = after[:end+1]
		default:
			return "", nil, fmt.Errorf("Desc.String() %q: field %s: unexpected value", s, key)
		}
		rest = strings.TrimPrefix(after[len(value):], ", ")
		switch key {
		case "fqName":
			name, _ = strconv.Unquote(value)
		case "constLabels":
			for _, m := range regexp.MustCompile(`(?:^\{|,)([a-zA-Z_][a-zA-Z0-9_]*)="`).FindAllStringSubmatch(value, -1) {
				labels[m[1]] = true
			}
		case "variableLabels":
			for l := range strings.SplitSeq(strings.Trim(value, "{}"), ",") {
				if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
					labels[l] = true
				}
			}
		}
	}
	if name == "" {
		return "", nil, fmt.Errorf("Desc.String() %q: no fqName", s)
	}
	return name, labels, nil
}

// closingBrace is the index of the } that closes the { s starts with,
// skipping quoted strings.
func closingBrace(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '"':
			q, err := strconv.QuotedPrefix(s[i:])
			if err != nil {
				return -1
			}
			i += len(q) - 1
		case '}':
			return i
		}
	}
	return -1
}

// sourceMetrics returns the names of the metrics the Go files of dir
// declare with a prometheus.*Opts literal whose Namespace, Subsystem and
// Name are string literals.
func sourceMetrics(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var names []string
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "prometheus" {
				return true
			}
			fields := map[string]string{}
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, ok1 := kv.Key.(*ast.Ident)
				val, ok2 := kv.Value.(*ast.BasicLit)
				if ok1 && ok2 && val.Kind == token.STRING {
					fields[key.Name], _ = strconv.Unquote(val.Value)
				}
			}
			if fields["Name"] != "" {
				names = append(names, prometheus.BuildFQName(fields["Namespace"], fields["Subsystem"], fields["Name"]))
			}
			return true
		})
	}
	return names, nil
}

// checkExpr checks the metric and label names of one PromQL expression
// against the exported metrics; where says where the expression is.
func checkExpr(t *testing.T, exp map[string]exported, where, expr string) {
	t.Helper()
	refs, err := extractRefs(expr)
	if err != nil {
		t.Errorf("%s: %v in %q", where, err, expr)
		return
	}
	allowed := map[string]bool{}
	unknown := false
	for _, name := range refs.metrics {
		e, ok := lookup(exp, name)
		if !ok {
			t.Errorf("%s: metric %s is exported by no collector (expression %q)", where, name, expr)
			unknown = true
			continue
		}
		if e.labels == nil {
			unknown = true
		}
		for l := range e.labels {
			allowed[l] = true
		}
	}
	if unknown {
		return
	}
	for _, l := range refs.labels {
		if !allowed[l] && !targetLabels[l] {
			t.Errorf("%s: label %s is on none of the metrics %v (expression %q)", where, l, refs.metrics, expr)
		}
	}
}

// lookup finds a metric, a histogram's or summary's series by their base
// name.
func lookup(exp map[string]exported, name string) (exported, bool) {
	if e, ok := exp[name]; ok {
		return e, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if e, ok := exp[base]; ok {
				return e, true
			}
		}
	}
	return exported{}, false
}

func TestExportedMetrics(t *testing.T) {
	exp := exportedMetrics(t)
	for name, source := range map[string]string{
		"shoal_api_requests_total":                   "server/prommetrics",
		"shoal_producer_buffered_records":            "producer/prommetrics",
		"shoal_consumer_max_behind_latest_seconds":   "consumer/prommetrics",
		"shoal_fanout_open_subscriptions":            "fanout/prommetrics",
		"process_cpu_seconds_total":                  "Go and process collectors (cmd/shoal/admin.go)",
		"go_goroutines":                              "Go and process collectors (cmd/shoal/admin.go)",
		"shoal_consumer_checkpoint_duration_seconds": "consumer/prommetrics",
	} {
		if e := exp[name]; e.source != source {
			t.Errorf("%s: from %q, want %q", name, e.source, source)
		}
	}
	if l := exp["shoal_consumer_records_processed_total"].labels; !l["application"] || !l["stream"] || !l["shard"] || len(l) != 3 {
		t.Errorf("labels of shoal_consumer_records_processed_total = %v, want application, stream, shard", l)
	}
	if testing.Verbose() {
		names := make([]string, 0, len(exp))
		for name := range exp {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			t.Logf("%s (%s)", name, exp[name].source)
		}
	}
}

func TestParseDesc(t *testing.T) {
	name, labels, err := parseDesc(`Desc{fqName: "shoal_x_total", help: "A \"quoted\" help, with {braces}: and commas.", unit: "", constLabels: {application="a,b=\"c\"}",stream="s"}, variableLabels: {shard,c(outcome)}}`)
	if err != nil {
		t.Fatal(err)
	}
	if name != "shoal_x_total" || len(labels) != 4 || !labels["application"] || !labels["stream"] || !labels["shard"] || !labels["outcome"] {
		t.Errorf("parseDesc = %q, %v", name, labels)
	}
	if _, _, err := parseDesc(`Desc{help: "x"}`); err == nil {
		t.Error("parseDesc of a Desc without fqName: no error")
	}
}

// Grafana's JSON model, the parts the test reads.
type (
	dashboard struct {
		UID           string     `json:"uid"`
		Title         string     `json:"title"`
		SchemaVersion int        `json:"schemaVersion"`
		Panels        []panel    `json:"panels"`
		Templating    templating `json:"templating"`
	}
	panel struct {
		ID         int            `json:"id"`
		Type       string         `json:"type"`
		Title      string         `json:"title"`
		Datasource *datasourceRef `json:"datasource"`
		Targets    []panelTarget  `json:"targets"`
		Panels     []panel        `json:"panels"` // of a collapsed row
	}
	panelTarget struct {
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
	}
	datasourceRef struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	templating struct {
		List []variable `json:"list"`
	}
	variable struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Query      json.RawMessage `json:"query"`
		Datasource *datasourceRef  `json:"datasource"`
	}
)

// query is the variable's query: a string, or an object with a query field.
func (v variable) query() (string, error) {
	var s string
	if err := json.Unmarshal(v.Query, &s); err == nil {
		return s, nil
	}
	var o struct {
		Query string `json:"query"`
	}
	err := json.Unmarshal(v.Query, &o)
	return o.Query, err
}

var (
	labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	grafanaVar  = regexp.MustCompile(`\$(?:\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}|([a-zA-Z_][a-zA-Z0-9_]*))`)
)

const dsUID = "${DS_PROMETHEUS}"

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d, want 39 or later", d.SchemaVersion)
	}
	exp := exportedMetrics(t)

	// Template variables: the data source, then label_values queries.
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		if vars[v.Name] {
			t.Errorf("variable %s defined twice", v.Name)
		}
		vars[v.Name] = true
		q, err := v.query()
		if err != nil {
			t.Errorf("variable %s: query: %v", v.Name, err)
			continue
		}
		switch v.Type {
		case "datasource":
			if v.Name != "DS_PROMETHEUS" || q != "prometheus" {
				t.Errorf("data source variable %s of type %q, want DS_PROMETHEUS of type prometheus", v.Name, q)
			}
		case "query":
			if v.Datasource == nil || v.Datasource.UID != dsUID {
				t.Errorf("variable %s: data source %+v, want uid %s", v.Name, v.Datasource, dsUID)
			}
			m := labelValues.FindStringSubmatch(q)
			if m == nil {
				t.Errorf("variable %s: query %q is no label_values(metric, label)", v.Name, q)
				continue
			}
			checkExpr(t, exp, "variable "+v.Name, m[1])
			if refs, err := extractRefs(m[1]); err == nil && len(refs.metrics) == 1 {
				if e, ok := lookup(exp, refs.metrics[0]); ok && !e.labels[m[2]] && !targetLabels[m[2]] {
					t.Errorf("variable %s: %s has no label %s", v.Name, refs.metrics[0], m[2])
				}
			}
		default:
			t.Errorf("variable %s: type %q", v.Name, v.Type)
		}
	}
	if !vars["DS_PROMETHEUS"] {
		t.Error("no DS_PROMETHEUS data source variable")
	}
	for _, v := range d.Templating.List {
		if v.Name == "stream" {
			if q, _ := v.query(); q != "label_values(shoal_stream_incoming_records_total, stream)" {
				t.Errorf("variable stream: query %q", q)
			}
		}
	}

	// Panels, at the top level and in collapsed rows.
	var rows []string
	ids := map[int]bool{}
	exprs := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Title == "" {
				t.Errorf("panel %d has no title", p.ID)
			}
			if p.Type == "row" {
				rows = append(rows, p.Title)
				walk(p.Panels)
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != dsUID || p.Datasource.Type != "prometheus" {
				t.Errorf("panel %q: data source %+v, want prometheus %s", p.Title, p.Datasource, dsUID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no targets", p.Title)
			}
			refIDs := map[string]bool{}
			for _, tg := range p.Targets {
				where := fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)
				if tg.RefID == "" || refIDs[tg.RefID] {
					t.Errorf("%s: refId empty or repeated", where)
				}
				refIDs[tg.RefID] = true
				if tg.Datasource != nil && tg.Datasource.UID != dsUID {
					t.Errorf("%s: data source %+v", where, tg.Datasource)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: no expr", where)
					continue
				}
				exprs++
				checkExpr(t, exp, where, tg.Expr)
				for _, m := range grafanaVar.FindAllStringSubmatch(tg.Expr, -1) {
					name := m[1] + m[2]
					if !strings.HasPrefix(name, "__") && !vars[name] {
						t.Errorf("%s: variable $%s is not defined", where, name)
					}
				}
			}
		}
	}
	walk(d.Panels)
	if exprs == 0 {
		t.Error("no expressions in the dashboard")
	}
	want := []string{"Server overview", "Shards", "Producer", "Consumer", "Fan-out"}
	if len(rows) != len(want) {
		t.Errorf("rows %q, want %q", rows, want)
	} else {
		for i := range want {
			if !strings.HasPrefix(rows[i], want[i]) {
				t.Errorf("row %d: %q, want %q", i, rows[i], want[i])
			}
		}
	}
}

var (
	promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)
	ruleKeys     = set("alert", "expr", "for", "keep_firing_for", "labels", "annotations")
)

func TestAlerts(t *testing.T) {
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAML(string(data))
	if err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	exp := exportedMetrics(t)
	root, _ := doc.(map[string]any)
	groups, _ := root["groups"].([]any)
	if len(root) != 1 || len(groups) == 0 {
		t.Fatalf("%s: want a mapping with groups only, have %v", alertsFile, doc)
	}
	var names []string
	seen := map[string]bool{}
	for gi, g := range groups {
		group, _ := g.(map[string]any)
		name, _ := group["name"].(string)
		rules, _ := group["rules"].([]any)
		if name == "" || len(rules) == 0 {
			t.Errorf("group %d: want a name and rules, have %v", gi, g)
			continue
		}
		names = append(names, name)
		for ri, r := range rules {
			rule, _ := r.(map[string]any)
			alert, _ := rule["alert"].(string)
			where := fmt.Sprintf("group %s rule %d (%s)", name, ri, alert)
			if alert == "" {
				t.Errorf("%s: no alert name (recording rules belong elsewhere)", where)
				continue
			}
			for k := range rule {
				if !ruleKeys[k] {
					t.Errorf("%s: unknown key %q", where, k)
				}
			}
			if f, ok := rule["for"]; ok {
				if s, _ := f.(string); !promDuration.MatchString(s) {
					t.Errorf("%s: for %v is no duration", where, f)
				}
			}
			labels, _ := rule["labels"].(map[string]any)
			severity, _ := labels["severity"].(string)
			if severity != "warning" && severity != "critical" {
				t.Errorf("%s: severity label %q, want warning or critical", where, severity)
			}
			annotations, _ := rule["annotations"].(map[string]any)
			if s, _ := annotations["summary"].(string); strings.TrimSpace(s) == "" {
				t.Errorf("%s: no summary annotation", where)
			}
			if key := alert + "/" + severity; seen[key] {
				t.Errorf("%s: a second %s alert of severity %s", where, alert, severity)
			} else {
				seen[key] = true
			}
			if !strings.Contains(string(readme), alert) {
				t.Errorf("%s: %s does not explain alert %s", where, readmeFile, alert)
			}
			expr, _ := rule["expr"].(string)
			if strings.TrimSpace(expr) == "" {
				t.Errorf("%s: no expr", where)
				continue
			}
			checkExpr(t, exp, where, expr)
			if strings.Contains(expr, "$") {
				t.Errorf("%s: expr %q holds a $ (a Grafana variable?)", where, expr)
			}
		}
	}
	if !slices.Equal(names, []string{"shoal-server", "shoal-libraries"}) {
		t.Errorf("groups %q, want shoal-server, shoal-libraries", names)
	}
}
