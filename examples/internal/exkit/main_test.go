package exkit

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"testing"
)

func TestExit(t *testing.T) {
	parse := func(args []string, stderr io.Writer) (string, error) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(stderr)
		v := fs.String("v", "", "")
		return *v, fs.Parse(args)
	}
	run := func(_ context.Context, v string, out io.Writer) error {
		if v == "bad" {
			return errors.New("it failed")
		}
		_, err := io.WriteString(out, "ran "+v)
		return err
	}
	for _, tc := range []struct {
		args               []string
		code               int
		wantOut, wantError string
	}{
		{args: []string{"-v", "ok"}, code: 0, wantOut: "ran ok"},
		{args: []string{"-h"}, code: 0},
		{args: []string{"-nope"}, code: 2, wantError: "x: flag provided but not defined: -nope\n"},
		{args: []string{"-v", "bad"}, code: 1, wantError: "x: it failed\n"},
	} {
		var out, errOut bytes.Buffer
		code := Exit(context.Background(), "x", tc.args, &out, &errOut, parse, run)
		if code != tc.code || out.String() != tc.wantOut {
			t.Errorf("%v: code %d, out %q; want %d, %q", tc.args, code, out.String(), tc.code, tc.wantOut)
		}
		if tc.wantError != "" && !bytes.HasSuffix(errOut.Bytes(), []byte(tc.wantError)) {
			t.Errorf("%v: stderr %q, want it to end with %q", tc.args, errOut.String(), tc.wantError)
		}
	}
}
