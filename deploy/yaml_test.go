package deploy_test

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The module does not require a YAML library (gopkg.in/yaml.v3 is in the
// module graph but not needed by the main module; importing it would add a
// requirement to go.mod), so alerts.yml is read by parseYAML: a reader of
// the block-style subset of YAML that Prometheus rule files use. It knows
// mappings with plain keys, sequences ("- " items, also at their key's
// indentation), plain, single- and double-quoted scalars, comments, and
// literal (|) and folded (>) block scalars with their chomping indicators.
// Everything else is an error rather than a guess: flow collections,
// anchors, aliases, tags, multi-line plain scalars, tabs, duplicate keys,
// several documents. Every scalar is a string; a mapping is a
// map[string]any and a sequence an []any.
func parseYAML(src string) (any, error) {
	p := &yamlParser{lines: strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")}
	if err := p.skipBlank(); err != nil {
		return nil, err
	}
	if p.eof() {
		return nil, nil
	}
	if ind := p.indent(); ind != 0 {
		return nil, p.errorf("the document starts indented")
	}
	v, err := p.node(0)
	if err != nil {
		return nil, err
	}
	if err := p.skipBlank(); err != nil {
		return nil, err
	}
	if !p.eof() {
		return nil, p.errorf("unexpected line (wrong indentation?)")
	}
	return v, nil
}

type yamlParser struct {
	lines []string
	i     int // the current line
}

var yamlKey = regexp.MustCompile(`^([A-Za-z0-9_.\-]+):(?:[ ]+(.*))?$`)

func (p *yamlParser) eof() bool { return p.i >= len(p.lines) }

func (p *yamlParser) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", p.i+1, fmt.Sprintf(format, args...))
}

// indent is the indentation of the current line.
func (p *yamlParser) indent() int {
	return len(p.lines[p.i]) - len(strings.TrimLeft(p.lines[p.i], " "))
}

// content is the current line without its indentation.
func (p *yamlParser) content() string { return strings.TrimLeft(p.lines[p.i], " ") }

// skipBlank moves past empty lines and comment lines, and refuses tabs in
// indentation and document markers.
func (p *yamlParser) skipBlank() error {
	for ; !p.eof(); p.i++ {
		line := p.lines[p.i]
		trimmed := strings.TrimLeft(line, " ")
		if strings.HasPrefix(trimmed, "\t") {
			return p.errorf("tab in indentation")
		}
		if strings.HasPrefix(line, "---") || strings.HasPrefix(line, "...") || strings.HasPrefix(line, "%") {
			return p.errorf("document markers and directives are not supported")
		}
		if t := strings.TrimSpace(trimmed); t != "" && !strings.HasPrefix(t, "#") {
			return nil
		}
	}
	return nil
}

func isItem(s string) bool { return s == "-" || strings.HasPrefix(s, "- ") }

// node reads the node whose first line is the current one, indented ind.
func (p *yamlParser) node(ind int) (any, error) {
	c := p.content()
	switch {
	case isItem(c):
		return p.sequence(ind)
	case yamlKey.MatchString(stripComment(c)):
		return p.mapping(ind)
	}
	v, err := scalar(c)
	if err != nil {
		return nil, p.errorf("%v", err)
	}
	p.i++
	return v, nil
}

func (p *yamlParser) sequence(ind int) ([]any, error) {
	out := []any{}
	for {
		if err := p.skipBlank(); err != nil {
			return nil, err
		}
		if p.eof() || p.indent() < ind || !isItem(p.content()) {
			return out, nil
		}
		if p.indent() > ind {
			return nil, p.errorf("unexpected indentation")
		}
		rest := strings.TrimPrefix(p.content(), "-")
		if strings.TrimSpace(stripComment(rest)) == "" {
			// The item's node starts on the next line, further indented.
			p.i++
			if err := p.skipBlank(); err != nil {
				return nil, err
			}
			if p.eof() || p.indent() <= ind {
				out = append(out, nil)
				continue
			}
			v, err := p.node(p.indent())
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			continue
		}
		// "- key: value": the item is a node indented as far as its text.
		at := ind + 1 + len(rest) - len(strings.TrimLeft(rest, " "))
		p.lines[p.i] = strings.Repeat(" ", at) + strings.TrimLeft(rest, " ")
		v, err := p.node(at)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

func (p *yamlParser) mapping(ind int) (map[string]any, error) {
	out := map[string]any{}
	for {
		if err := p.skipBlank(); err != nil {
			return nil, err
		}
		if p.eof() || p.indent() < ind {
			return out, nil
		}
		if p.indent() > ind {
			return nil, p.errorf("unexpected indentation (a multi-line plain scalar?)")
		}
		c := p.content()
		if isItem(c) {
			return out, nil // a sequence at the parent's indentation
		}
		m := yamlKey.FindStringSubmatch(c)
		if m == nil {
			return nil, p.errorf("want key: value, have %q", c)
		}
		key, rest := m[1], strings.TrimSpace(m[2])
		if _, dup := out[key]; dup {
			return nil, p.errorf("duplicate key %q", key)
		}
		p.i++
		var (
			v   any
			err error
		)
		switch {
		case strings.TrimSpace(stripComment(rest)) == "":
			if err := p.skipBlank(); err != nil {
				return nil, err
			}
			switch {
			case p.eof():
			case p.indent() > ind:
				v, err = p.node(p.indent())
			case p.indent() == ind && isItem(p.content()):
				v, err = p.sequence(ind)
			}
		case rest[0] == '|' || rest[0] == '>':
			v, err = p.blockScalar(ind, rest)
		default:
			v, err = scalar(rest)
			if err != nil {
				err = fmt.Errorf("line %d: %w", p.i, err)
			}
		}
		if err != nil {
			return nil, err
		}
		out[key] = v
	}
}

// blockScalar reads the lines of a | or > scalar whose key is indented ind;
// header is the indicator and what follows it on the key's line.
func (p *yamlParser) blockScalar(ind int, header string) (string, error) {
	style, chomp := header[0], strings.TrimSpace(stripComment(header[1:]))
	if chomp != "" && chomp != "-" && chomp != "+" {
		return "", fmt.Errorf("line %d: block scalar header %q: only the chomping indicators - and + are supported", p.i, header)
	}
	var lines []string
	block := -1 // the block's indentation, that of its first non-empty line
	for ; !p.eof(); p.i++ {
		line := p.lines[p.i]
		if strings.TrimSpace(line) == "" {
			lines = append(lines, "")
			continue
		}
		n := len(line) - len(strings.TrimLeft(line, " "))
		if strings.HasPrefix(line[n:], "\t") && block < 0 {
			return "", p.errorf("tab in indentation")
		}
		if block < 0 {
			if n <= ind {
				break
			}
			block = n
		}
		if n < block {
			break
		}
		lines = append(lines, line[block:])
	}
	// Trailing empty lines belong to the chomping, not the content.
	content := lines
	for len(content) > 0 && content[len(content)-1] == "" {
		content = content[:len(content)-1]
	}
	var text string
	if style == '|' {
		text = strings.Join(content, "\n")
	} else {
		var b strings.Builder
		for i, l := range content {
			if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
				return "", fmt.Errorf("line %d: more-indented lines in a folded scalar are not supported", p.i)
			}
			// Folding: a line break between two lines is a space, an
			// empty line is a line break.
			switch {
			case i == 0 || content[i-1] == "" && l != "":
			case l == "":
				b.WriteString("\n")
			default:
				b.WriteString(" ")
			}
			b.WriteString(l)
		}
		text = b.String()
	}
	switch {
	case len(content) == 0:
		return "", nil
	case chomp == "-":
		return text, nil
	case chomp == "+":
		return text + strings.Repeat("\n", len(lines)-len(content)+1), nil
	}
	return text + "\n", nil
}

// stripComment cuts a comment (" #" outside quotes) off a plain value.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			if i == 0 || s[i-1] == ' ' {
				quote = c
			}
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return strings.TrimRight(s[:i], " ")
		}
	}
	return s
}

// scalar reads a one-line scalar (a value or a sequence item).
func scalar(s string) (string, error) {
	switch s[0] {
	case '"':
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return "", fmt.Errorf("double-quoted scalar %s: %v", s, err)
		}
		if rest := strings.TrimSpace(s[len(q):]); rest != "" && !strings.HasPrefix(rest, "#") {
			return "", fmt.Errorf("text after the closing quote: %q", rest)
		}
		return strconv.Unquote(q)
	case '\'':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] != '\'' {
				b.WriteByte(s[i])
				continue
			}
			if i+1 < len(s) && s[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			if rest := strings.TrimSpace(s[i+1:]); rest != "" && !strings.HasPrefix(rest, "#") {
				return "", fmt.Errorf("text after the closing quote: %q", rest)
			}
			return b.String(), nil
		}
		return "", fmt.Errorf("unterminated single-quoted scalar %s", s)
	case '[', '{', '&', '*', '!', '|', '>', '%', '@', '`', ',', '?':
		return "", fmt.Errorf("%q: flow collections, anchors, aliases, tags and reserved indicators are not supported", s)
	}
	v := stripComment(s)
	if strings.Contains(v, ": ") || strings.HasSuffix(v, ":") {
		return "", fmt.Errorf("plain scalar %q holds \": \": quote it", v)
	}
	return v, nil
}

// TestParseYAML checks the reader TestAlerts relies on.
func TestParseYAML(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want any
	}{
		{
			src: `# rules
groups:
  - name: g # a comment
    rules:
      - alert: A
        expr: |
          sum(x)
            > 1

        for: 5m
        labels:
          severity: "warning"
        annotations:
          summary: 'it''s {{ $labels.x }}: high'
          description: >-
            one
            two

            three
      - alert: B
        expr: y > 0
  - name: h
    rules:
    - alert: C
      expr: |-
        z
    - plain item
`,
			want: map[string]any{"groups": []any{
				map[string]any{"name": "g", "rules": []any{
					map[string]any{
						"alert":       "A",
						"expr":        "sum(x)\n  > 1\n",
						"for":         "5m",
						"labels":      map[string]any{"severity": "warning"},
						"annotations": map[string]any{"summary": "it's {{ $labels.x }}: high", "description": "one two\nthree"},
					},
					map[string]any{"alert": "B", "expr": "y > 0"},
				}},
				map[string]any{"name": "h", "rules": []any{
					map[string]any{"alert": "C", "expr": "z"},
					"plain item",
				}},
			}},
		},
		{src: "a:\nb: \"q\\\"uote\" # c\n", want: map[string]any{"a": nil, "b": "q\"uote"}},
		{src: "\n# only comments\n", want: nil},
	} {
		got, err := parseYAML(tc.src)
		if err != nil {
			t.Errorf("parseYAML(%q): %v", tc.src, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseYAML(%q) = %#v, want %#v", tc.src, got, tc.want)
		}
	}
	for _, src := range []string{
		"a: 1\na: 2\n",               // duplicate key
		"a:\n\tb: 1\n",               // tab
		"a: [1, 2]\n",                // flow sequence
		"a: &x 1\n",                  // anchor
		"a: b: c\n",                  // ": " in a plain scalar
		"a: 1\n  b: 2\n",             // bad indentation
		"a: one\n  two\n",            // multi-line plain scalar
		"a: \"open\n",                // unterminated quote
		"a: |2\n  x\n",               // explicit indentation indicator
		"---\na: 1\n",                // document marker
		"a:\n  - x\n b: 1\n",         // bad indentation after a sequence
		"a: \"x\" y\n",               // text after a quoted scalar
		"key with space: 1\n",        // not a plain key
		"a: 1\n- b\n",                // a sequence after a mapping
		"  a: 1\n",                   // indented document
		"a: >\n  x\n    more\n  y\n", // more-indented folded line
		"a: {b: 1}\n",                // flow mapping
		"a: |\n  x\n b: 1\n",         // dedent to no level after a block
		"a:\n  - x\n  -y\n",          // "-y" is no item
		"a: ok\n\"quoted key\": 1\n", // quoted keys are not supported
		"a: \"bad \\q escape\"\n",    // invalid escape
		"a: 'x' y\n",                 // text after a single-quoted scalar
		"a: |x\n  y\n",               // junk in a block header
		"a: x:\n",                    // trailing colon
		"a:\n  b: 1\n  b: 2\n",       // nested duplicate
		"a: 'it''s' 'x'\n",           // two quoted strings
		"a:\n  - |\n    x\n   y\n",   // dedent inside an item's block
	} {
		if got, err := parseYAML(src); err == nil {
			t.Errorf("parseYAML(%q) = %#v, want an error", src, got)
		}
	}
}
