package strictjson_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shoalstream/shoal/internal/strictjson"
)

type file struct {
	Keys []struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	} `json:"keys"`
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"keys":[{"id":"a","secret":"s3cr3t","extra":1}]}`, `keys[0]: unknown field "extra"`},
		{`{"keys":[{"id":"a","id":"b"}]}`, `keys[0]: duplicate field "id"`},
		{`{"keys":[{"id":1}]}`, `keys[0].id: want string, got number`},
		{`{"keys":{}}`, `keys: want array, got object`},
		{"{\"keys\":[\n{\"secret\":\"s3cr3t\"", `keys[0]: unexpected end of JSON at line 2, column 19`},
		{`{"keys":[{"secret":"s3cr3t"}]} x`, `invalid JSON at line 1, column 32`},
	} {
		var f file
		err := strictjson.Decode([]byte(c.in), &f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%s) = %v, want %q", c.in, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Decode(%s) quotes a value: %v", c.in, err)
		}
	}
	var f file
	if err := strictjson.Decode([]byte(`{"keys":[{"id":"a","secret":"b"}]}`), &f); err != nil || f.Keys[0].Secret != "b" {
		t.Fatalf("Decode of a good file: %v %+v", err, f)
	}
}

func ExampleDecode() {
	var v struct {
		Name string `json:"name"`
	}
	fmt.Println(strictjson.Decode([]byte(`{"name":"x","nane":"y"}`), &v))
	// Output: unknown field "nane"
}
