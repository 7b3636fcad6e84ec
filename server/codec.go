package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Content types of the two protocols Kinesis speaks.
const (
	contentTypeJSON = "application/x-amz-json-1.1"
	contentTypeCBOR = "application/x-amz-cbor-1.1"
)

// codec reads requests and writes responses in one protocol.
type codec interface {
	contentType() string
	decode(body []byte, v any) error
	encode(w io.Writer, v any) error
}

type jsonCodec struct{}

func (jsonCodec) contentType() string { return contentTypeJSON }

func (jsonCodec) decode(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		return err
	}
	// Anything but white space after the object is malformed.
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the request object")
	}
	return nil
}

func (jsonCodec) encode(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

type cborCodec struct{}

var (
	cborDec cbor.DecMode
	cborEnc cbor.EncMode
)

func init() {
	var err error
	cborDec, err = cbor.DecOptions{
		MaxArrayElements: 1 << 17,
		MaxMapPairs:      1 << 17,
		DupMapKey:        cbor.DupMapKeyQuiet,
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("cbor decode options: %v", err))
	}
	cborEnc, err = cbor.EncOptions{}.EncMode()
	if err != nil {
		panic(fmt.Sprintf("cbor encode options: %v", err))
	}
}

func (cborCodec) contentType() string { return contentTypeCBOR }

func (cborCodec) decode(body []byte, v any) error {
	rest, err := cborDec.UnmarshalFirst(body, v)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("unexpected data after the request object")
	}
	return nil
}

func (cborCodec) encode(w io.Writer, v any) error {
	return cborEnc.NewEncoder(w).Encode(v)
}

// bufPool recycles request and response buffers.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

func putBuf(b *bytes.Buffer) {
	if b.Cap() > 32<<20 {
		return // let huge buffers go
	}
	bufPool.Put(b)
}
