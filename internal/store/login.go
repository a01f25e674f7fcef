package store

import (
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"time"
)

// One login is one hash under LoginKey(sid), shared by the session package
// (its record, cookie hash and activity times) and the token package (the
// login's current refresh token): a login costs one key, which is most of
// what Redis spends on it (docs/architecture.md, "Store layout"). Both read
// the login's identity from the same field, so it is stored once.
//
// Every value is kept to at most ChunkLen bytes, longer ones cut into pieces
// name, name1, name2...: Redis keeps a hash whose values are all that short
// as one packed allocation (hash-max-listpack-value, 64 by default) and
// turns it into a real hash table, several times bigger, otherwise.
//
// The key's name is short enough for Redis's smallest string header: a key
// of fewer than 32 characters costs a 32-byte allocation, and ts:sess:<sid>
// is 29 or 30 (a shorter prefix would save nothing).
func LoginKey(sid string) string { return "ts:sess:" + sid }

// Fields of a login hash that more than one package reads or writes.
const (
	// FieldIdentity holds EncodeIdentity (pieces a, a1...).
	FieldIdentity = "a"
	// FieldRefresh is the login's current refresh token (package token).
	FieldRefresh = "t"
	// FieldRefreshUsed holds the fingerprints of its consumed refresh
	// tokens (TakeField).
	FieldRefreshUsed = "u"
	// FieldRecord is the session package's record of the login (pieces r,
	// r1...). It begins with a version byte (2 or more) and the login's
	// creation, unix nanoseconds, 8 bytes big-endian: LoginCreated reads it,
	// so that the token package refers to it instead of storing it again.
	FieldRecord = "r"
)

// LoginCreated is the creation of the login in h, read from its record; ok
// false when h has no record of a version that starts with it.
func LoginCreated(h map[string][]byte) (created time.Time, ok bool) {
	r := h[FieldRecord]
	if len(r) < 1+8 || r[0] < 2 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(r[1:9]))).UTC(), true
}

// ChunkLen is the longest value a packed Redis hash holds by default.
const ChunkLen = 64

// FingerprintLen is how much of an id TakeField keeps once it is taken.
const FingerprintLen = 8

// Chunks cuts b into fields name, name1, name2... of at most ChunkLen bytes.
func Chunks(name string, b []byte) []Field {
	fields := make([]Field, 0, (len(b)+ChunkLen-1)/ChunkLen)
	for i := 0; len(b) > 0; i++ {
		n := min(len(b), ChunkLen)
		fields = append(fields, Field{Name: chunkName(name, i), Value: b[:n]})
		b = b[n:]
	}
	return fields
}

// Joined is the value Chunks cut into name, name1...; nil when h has no
// field name.
func Joined(h map[string][]byte, name string) []byte {
	first, ok := h[name]
	if !ok {
		return nil
	}
	if _, more := h[chunkName(name, 1)]; !more {
		return first
	}
	b := slices.Clone(first)
	for i := 1; ; i++ {
		part, ok := h[chunkName(name, i)]
		if !ok {
			return b
		}
		b = append(b, part...)
	}
}

func chunkName(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + strconv.Itoa(i)
}

// Identity is who a login is: what access tokens carry and what the session
// check answers.
type Identity struct {
	UserID, Email, ClientID string
	Roles                   []string
}

// ErrCorruptLogin: a login field that does not decode.
var ErrCorruptLogin = errors.New("store: corrupt login field")

const identityVersion = 1

// EncodeIdentity is a version byte, then user, email and client, the number
// of roles and each role, every string as a uvarint length and its bytes.
func EncodeIdentity(id Identity) []byte {
	n := 1 + 4*binary.MaxVarintLen16 + len(id.UserID) + len(id.Email) + len(id.ClientID)
	for _, r := range id.Roles {
		n += binary.MaxVarintLen16 + len(r)
	}
	b := make([]byte, 0, n)
	b = append(b, identityVersion)
	for _, s := range []string{id.UserID, id.Email, id.ClientID} {
		b = AppendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(len(id.Roles)))
	for _, r := range id.Roles {
		b = AppendString(b, r)
	}
	return b
}

// IdentityFields are the fields that hold id.
func IdentityFields(id Identity) []Field { return Chunks(FieldIdentity, EncodeIdentity(id)) }

// ParseIdentity reads the identity of a login hash: ok false when h has none.
func ParseIdentity(h map[string][]byte) (id Identity, ok bool, err error) {
	b := Joined(h, FieldIdentity)
	if b == nil {
		return Identity{}, false, nil
	}
	if len(b) == 0 || b[0] != identityVersion {
		return Identity{}, true, ErrCorruptLogin
	}
	r := Reader{B: b[1:]}
	id.UserID, id.Email, id.ClientID = r.String(), r.String(), r.String()
	n := r.Uvarint()
	if n > uint64(len(r.B)) {
		return Identity{}, true, ErrCorruptLogin
	}
	for range n {
		id.Roles = append(id.Roles, r.String())
	}
	if !r.Done() || id.UserID == "" {
		return Identity{}, true, ErrCorruptLogin
	}
	return id, true, nil
}

// AppendString appends s as a uvarint length and its bytes.
func AppendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// AppendBytes appends s as a uvarint length and its bytes.
func AppendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// Reader reads what AppendString, AppendBytes and binary.AppendUvarint
// wrote; the first error sticks and Done reports it.
type Reader struct {
	B   []byte
	bad bool
}

func (r *Reader) Uvarint() uint64 {
	n, k := binary.Uvarint(r.B)
	if k <= 0 {
		r.bad = true
		r.B = nil
		return 0
	}
	r.B = r.B[k:]
	return n
}

func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.bad || n > uint64(len(r.B)) {
		r.bad = true
		r.B = nil
		return nil
	}
	s := r.B[:n]
	r.B = r.B[n:]
	return s
}

func (r *Reader) String() string { return string(r.Bytes()) }

// Done reports whether everything was read without an error.
func (r *Reader) Done() bool { return !r.bad && len(r.B) == 0 }
