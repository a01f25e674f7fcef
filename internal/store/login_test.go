package store

import (
	"encoding/binary"
	"testing"
	"time"
)

func TestLoginCreated(t *testing.T) {
	at := time.Unix(0, 1_796_409_127_402_362_492).UTC()
	for _, v := range []byte{2, 3} {
		r := binary.BigEndian.AppendUint64([]byte{v}, uint64(at.UnixNano()))
		if got, ok := LoginCreated(map[string][]byte{FieldRecord: append(r, 0)}); !ok || !got.Equal(at) {
			t.Fatalf("version %d: %v, %v", v, got, ok)
		}
	}
	for _, h := range []map[string][]byte{{}, {FieldRecord: {3, 0, 0}}, {FieldRecord: make([]byte, 9)}} {
		if _, ok := LoginCreated(h); ok {
			t.Fatalf("LoginCreated(%q) ok", h)
		}
	}
}
