package deploy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// promqlRefs is what a PromQL expression refers to, each name once, in
// order of first appearance.
type promqlRefs struct {
	metrics []string // metric names (a histogram's _bucket, _sum, _count as written)
	labels  []string // label names of matchers and of by, without, on, ignoring, group_left, group_right
}

// extractRefs scans a PromQL expression (with Grafana variables such as
// $job or $__rate_interval in it) for the metric and label names it uses.
// It is not a parser: it knows PromQL's tokens, function names and
// keywords well enough to tell metric names from the rest, and it fails on
// what it does not know (an unknown function, a malformed matcher,
// unbalanced brackets), which catches typos too.
func extractRefs(expr string) (promqlRefs, error) {
	toks, err := tokenize(expr)
	if err != nil {
		return promqlRefs{}, err
	}
	var (
		refs   promqlRefs
		parens int
	)
	addMetric := func(s string) {
		if !slices.Contains(refs.metrics, s) {
			refs.metrics = append(refs.metrics, s)
		}
	}
	addLabel := func(s string) {
		if !slices.Contains(refs.labels, s) {
			refs.labels = append(refs.labels, s)
		}
	}
	peek := func(i int) ptoken {
		if i < len(toks) {
			return toks[i]
		}
		return ptoken{}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tokPunct:
			switch t.text {
			case "(":
				parens++
			case ")":
				parens--
				if parens < 0 {
					return promqlRefs{}, fmt.Errorf("unbalanced ) at offset %d", t.pos)
				}
			case "{":
				labels, next, err := matchers(toks, i+1)
				if err != nil {
					return promqlRefs{}, err
				}
				for _, l := range labels {
					addLabel(l)
				}
				i = next
			case "}":
				return promqlRefs{}, fmt.Errorf("unbalanced } at offset %d", t.pos)
			}
		case tokIdent:
			lower := strings.ToLower(t.text)
			next := peek(i + 1)
			switch {
			case groupingKeywords[lower]:
				if next.is("(") {
					labels, end, err := labelList(toks, i+2)
					if err != nil {
						return promqlRefs{}, err
					}
					for _, l := range labels {
						addLabel(l)
					}
					i = end
				}
			case binaryKeywords[lower]:
			case aggregations[lower] && (next.is("(") || next.kind == tokIdent && (strings.EqualFold(next.text, "by") || strings.EqualFold(next.text, "without"))):
			case next.is("("):
				if !functions[t.text] {
					return promqlRefs{}, fmt.Errorf("unknown function %s at offset %d", t.text, t.pos)
				}
			case lower == "inf" || lower == "nan":
			default:
				addMetric(t.text)
			}
		}
	}
	if parens != 0 {
		return promqlRefs{}, fmt.Errorf("unbalanced parentheses: %d left open", parens)
	}
	return refs, nil
}

// matchers reads the label matchers that follow a { at toks[i]: their
// label names and the index of the closing }.
func matchers(toks []ptoken, i int) (labels []string, end int, err error) {
	for ; i < len(toks); i++ {
		if toks[i].is("}") {
			return labels, i, nil
		}
		if i+2 >= len(toks) || toks[i].kind != tokIdent || !matchOps[toks[i+1].text] || toks[i+1].kind != tokPunct || toks[i+2].kind != tokString {
			return nil, 0, fmt.Errorf("malformed label matcher at offset %d (want label, =, !=, =~ or !~, then a quoted string)", toks[i].pos)
		}
		labels = append(labels, toks[i].text)
		i += 3
		switch {
		case i < len(toks) && toks[i].is("}"):
			return labels, i, nil
		case i < len(toks) && toks[i].is(","):
		default:
			return nil, 0, fmt.Errorf("label matchers: want , or } after a matcher")
		}
	}
	return nil, 0, fmt.Errorf("unbalanced { (no closing })")
}

// labelList reads the label names of a by/without/on/ignoring/group_*
// list starting after its ( at toks[i]: the names and the index of the
// closing ).
func labelList(toks []ptoken, i int) (labels []string, end int, err error) {
	for ; i < len(toks); i++ {
		switch t := toks[i]; {
		case t.is(")"):
			return labels, i, nil
		case t.is(","):
		case t.kind == tokIdent:
			labels = append(labels, t.text)
		default:
			return nil, 0, fmt.Errorf("label list: unexpected %q at offset %d", t.text, t.pos)
		}
	}
	return nil, 0, fmt.Errorf("label list: no closing )")
}

type tokenKind int

const (
	tokNone tokenKind = iota
	tokIdent
	tokNumber
	tokString
	tokPunct
	tokRange // [5m], [$__rate_interval], [1h:1m]: opaque
	tokVar   // a Grafana variable outside strings and ranges
)

type ptoken struct {
	kind tokenKind
	text string
	pos  int
}

func (t ptoken) is(punct string) bool { return t.kind == tokPunct && t.text == punct }

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' }

// tokenize splits a PromQL expression into tokens.
func tokenize(s string) ([]ptoken, error) {
	var toks []ptoken
	for i := 0; i < len(s); {
		c := s[i]
		start := i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#': // a comment, to the end of the line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			i++
			for i < len(s) && s[i] != c {
				if s[i] == '\\' && c != '`' {
					i++
				}
				i++
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated string at offset %d", start)
			}
			i++
			toks = append(toks, ptoken{tokString, s[start:i], start})
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unbalanced [ at offset %d", start)
			}
			i += end + 1
			toks = append(toks, ptoken{tokRange, s[start:i], start})
		case c == ']':
			return nil, fmt.Errorf("unbalanced ] at offset %d", start)
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return nil, fmt.Errorf("unterminated ${ at offset %d", start)
				}
				i += end + 1
			} else {
				for i < len(s) && isIdentChar(s[i]) {
					i++
				}
			}
			toks = append(toks, ptoken{tokVar, s[start:i], start})
		case isIdentStart(c):
			for i < len(s) && isIdentChar(s[i]) {
				i++
			}
			toks = append(toks, ptoken{tokIdent, s[start:i], start})
		case '0' <= c && c <= '9' || c == '.' && i+1 < len(s) && '0' <= s[i+1] && s[i+1] <= '9':
			// Numbers and durations (offset 5m): digits, letters, dots.
			for i < len(s) && (isIdentChar(s[i]) && s[i] != ':' || s[i] == '.' ||
				(s[i] == '+' || s[i] == '-') && (s[i-1] == 'e' || s[i-1] == 'E') && !strings.ContainsAny(s[start:i], "xX")) {
				i++
			}
			toks = append(toks, ptoken{tokNumber, s[start:i], start})
		default:
			if i+1 < len(s) && twoCharOps[s[i:i+2]] {
				i += 2
			} else if strings.IndexByte("(){},+-*/%^<>=@", c) >= 0 {
				i++
			} else {
				return nil, fmt.Errorf("unexpected %q at offset %d", c, start)
			}
			toks = append(toks, ptoken{tokPunct, s[start:i], start})
		}
	}
	return toks, nil
}

var (
	twoCharOps = map[string]bool{"==": true, "!=": true, "<=": true, ">=": true, "=~": true, "!~": true}
	matchOps   = map[string]bool{"=": true, "!=": true, "=~": true, "!~": true}

	// groupingKeywords take a list of label names in parentheses.
	groupingKeywords = set("by", "without", "on", "ignoring", "group_left", "group_right")
	// binaryKeywords are the other keywords (case-insensitive in PromQL).
	binaryKeywords = set("and", "or", "unless", "atan2", "bool", "offset")
	// aggregations are PromQL's aggregation operators (case-insensitive).
	aggregations = set("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio")
	// functions are PromQL's functions (Prometheus 3), and start() and
	// end() of the @ modifier.
	functions = set("abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
		"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
		"count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg", "delta",
		"deriv", "double_exponential_smoothing", "end", "exp", "floor", "histogram_avg", "histogram_count",
		"histogram_fraction", "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum",
		"holt_winters", "hour", "idelta", "increase", "info", "irate", "label_join", "label_replace",
		"last_over_time", "ln", "log10", "log2", "mad_over_time", "max_over_time", "min_over_time", "minute",
		"month", "pi", "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
		"round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc",
		"sqrt", "start", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time",
		"timestamp", "vector", "year")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// TestExtractRefs checks the scanner the other tests rely on.
func TestExtractRefs(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		metrics []string
		labels  []string
	}{
		{
			expr:    `rate(shoal_api_requests_total{code!="OK", job=~"$job"}[5m])`,
			metrics: []string{"shoal_api_requests_total"},
			labels:  []string{"code", "job"},
		},
		{
			expr:    `histogram_quantile(0.99, sum by (operation, le) (rate(shoal_api_request_duration_seconds_bucket{job=~"${job}"}[$__rate_interval])))`,
			metrics: []string{"shoal_api_request_duration_seconds_bucket"},
			labels:  []string{"operation", "le", "job"},
		},
		{
			expr:    `label_replace(sum by (stream, consumer) (rate(out_total[5m])), "consumer", "GetRecords", "consumer", "")`,
			metrics: []string{"out_total"},
			labels:  []string{"stream", "consumer"},
		},
		{
			expr:    "a_total / on (stream) group_left (kind) b:recorded > 0.01\nand c offset 5m # d_total is a comment",
			metrics: []string{"a_total", "b:recorded", "c"},
			labels:  []string{"stream", "kind"},
		},
		{
			expr:    `sum(rate(foo[5m])) by (bar) or vector(0)`,
			metrics: []string{"foo"},
			labels:  []string{"bar"},
		},
		{
			expr:    `topk(20, MAX WITHOUT (instance) (x)) > bool 1e-3 and x < Inf and x != NaN`,
			metrics: []string{"x"},
			labels:  []string{"instance"},
		},
		{
			expr:    `process_open_fds / process_max_fds unless absent_over_time(up[1h:1m])`,
			metrics: []string{"process_open_fds", "process_max_fds", "up"},
		},
		{
			expr:    `count_values("version", go_info) @ end()`,
			metrics: []string{"go_info"},
		},
	} {
		got, err := extractRefs(tc.expr)
		if err != nil {
			t.Errorf("extractRefs(%q): %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got.metrics, tc.metrics) || !slices.Equal(got.labels, tc.labels) {
			t.Errorf("extractRefs(%q) = metrics %q, labels %q; want %q, %q", tc.expr, got.metrics, got.labels, tc.metrics, tc.labels)
		}
	}
	for _, expr := range []string{
		`sum(rate(x[5m])`,
		`sum(rate(x[5m])))`,
		`rate(x[5m]`,
		`rat(x[5m])`,
		`x{job=}`,
		`x{job="a"`,
		`x{job="a" instance="b"}`,
		`x{"job"="a"}`,
		`sum by (job x`,
		`x{job="unterminated}`,
		`x ! y`,
	} {
		if got, err := extractRefs(expr); err == nil {
			t.Errorf("extractRefs(%q) = %+v, want an error", expr, got)
		}
	}
}
