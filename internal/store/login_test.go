package store

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// TestLoginKey: the key follows from the sid alone; new (21-character) sids
// get a name of at most 28 characters, every other sid keeps ts:sess:.
func TestLoginKey(t *testing.T) {
	short := strings.Repeat("a", ShortSIDLen)
	if k := LoginKey(short); k != "ts:l:"+short || len(k) > 28 {
		t.Fatalf("LoginKey(new sid) = %q", k)
	}
	for _, sid := range []string{strings.Repeat("a", 22), "sid-before-upgrade", strings.Repeat("a", ShortSIDLen-1)} {
		if k := LoginKey(sid); k != "ts:sess:"+sid {
			t.Fatalf("LoginKey(%q) = %q; want ts:sess:<sid>", sid, k)
		}
	}
}

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
