// Package strictjson decodes configuration files strictly: unknown and
// duplicate members are errors, and every error names where it is in the
// style keys[0].versions[1] without quoting any value (a value of a
// configuration file may be a secret).
package strictjson

import (
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Decode unmarshals data into v, rejecting unknown and duplicate members,
// and turns the decoder's errors into ones that name a path in the style
// principals[0].accessKeys[0] and carry no JSON values: the decoder's own
// messages quote the offending value, which could be a secret.
func Decode(data []byte, v any) error {
	err := json.Unmarshal(data, v, json.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	var serr *jsontext.SyntacticError
	if errors.As(err, &serr) {
		return syntaxError(data, serr)
	}
	var jerr *json.SemanticError
	if errors.As(err, &jerr) {
		if errors.Is(jerr.Err, json.ErrUnknownName) {
			return AtPath(jerr.JSONPointer.Parent(), "unknown field "+strconv.Quote(jerr.JSONPointer.LastToken()))
		}
		msg := "want " + jsonKindOf(jerr.GoType)
		if jerr.JSONKind != 0 {
			msg += ", got " + KindName(jerr.JSONKind)
		}
		return AtPath(jerr.JSONPointer, msg)
	}
	// Unmarshal returns only the two error types above for in-memory input;
	// say nothing more specific than this rather than risk quoting a value.
	return errors.New("invalid JSON")
}

func syntaxError(data []byte, serr *jsontext.SyntacticError) error {
	line, col := position(data, serr.ByteOffset)
	what := "invalid JSON"
	switch {
	case errors.Is(serr.Err, io.ErrUnexpectedEOF) || errors.Is(serr.Err, io.EOF):
		what = "unexpected end of JSON"
	case errors.Is(serr.Err, jsontext.ErrDuplicateName):
		// The pointer ends with the duplicated member's name (a name, not a
		// value, so safe to show).
		return AtPath(serr.JSONPointer.Parent(), "duplicate field "+strconv.Quote(serr.JSONPointer.LastToken()))
	}
	return AtPath(serr.JSONPointer, what+" at line "+strconv.Itoa(line)+", column "+strconv.Itoa(col))
}

// position converts a byte offset to a 1-based line and column (in bytes).
func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = 1 + strings.Count(string(before), "\n")
	col = int(off) - strings.LastIndexByte(string(before), '\n')
	return line, col
}

// AtPath builds an error at a JSON pointer, written as a path:
// /principals/0/accessKeys -> principals[0].accessKeys.
func AtPath(ptr jsontext.Pointer, msg string) error {
	var b strings.Builder
	for tok := range ptr.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return errors.New(msg)
	}
	return errors.New(b.String() + ": " + msg)
}

func jsonKindOf(t reflect.Type) string {
	if t == nil {
		return "a different value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return t.Kind().String()
}

// KindName names a JSON value's kind as error messages do: "string",
// "number", "boolean", "null", "object", "array" (else "invalid").
func KindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "invalid"
}
