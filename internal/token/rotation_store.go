package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenshift/tokenshift/internal/auth"
	"github.com/tokenshift/tokenshift/internal/store"
)

// Where the rotation state lives. One JSON value, changed only by
// compare-and-set on its version, announced on a channel; instance reports
// are one hash field per instance.
const (
	RotationChannel    = "ts:keys:changed"
	rotationKey        = "ts:keys:rotation"
	rotationReportsKey = "ts:keys:instances"
)

// errRotationConflict: the stored version is not the one the change was
// computed from.
var errRotationConflict = errors.New("token: rotation state changed meanwhile")

// rotationCAS compares the version inside the stored JSON, so the state stays
// one self-describing value. Replies -1 on success, else the stored version.
var rotationCAS = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local version = 0
if cur then
  version = tonumber(cjson.decode(cur)['version']) or 0
end
if version ~= tonumber(ARGV[1]) then
  return version
end
redis.call('SET', KEYS[1], ARGV[2])
return -1
`)

// memoryCAS serialises compare-and-set on in-memory stores, which have no
// scripting; one lock per store, shared by every Rotator in the process.
var memoryCAS sync.Map // store.Store → *sync.Mutex

type rotationStore struct{ st store.Store }

func (rs rotationStore) load(ctx context.Context) (RotationState, bool, error) {
	raw, err := rs.st.GetCtx(ctx, rotationKey)
	if err != nil {
		return RotationState{}, false, fmt.Errorf("token: load rotation state: %w", err)
	}
	if raw == nil {
		return RotationState{}, false, nil
	}
	var s RotationState
	if err := json.Unmarshal(raw, &s); err != nil {
		return RotationState{}, false, fmt.Errorf("%w: stored value is not valid JSON: %v", ErrRotationState, err)
	}
	if err := s.Validate(); err != nil {
		return RotationState{}, false, err
	}
	return s, true, nil
}

// cas stores next if the stored version is expect (0: nothing stored).
func (rs rotationStore) cas(ctx context.Context, expect int64, next RotationState) error {
	raw, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("token: encode rotation state: %w", err)
	}
	if rc := rs.st.Redis(); rc != nil {
		got, err := rotationCAS.Run(ctx, rc, []string{rotationKey}, expect, raw).Int64()
		if err != nil {
			return fmt.Errorf("token: store rotation state: %w: %w", auth.ErrUnavailable, err)
		}
		if got != -1 {
			return fmt.Errorf("%w: expected version %d, stored %d", errRotationConflict, expect, got)
		}
		return nil
	}
	mu, _ := memoryCAS.LoadOrStore(rs.st, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	cur, ok, err := rs.load(ctx)
	if err != nil && !errors.Is(err, ErrRotationState) {
		return err
	}
	stored := int64(0)
	if ok {
		stored = cur.Version
	}
	if stored != expect {
		return fmt.Errorf("%w: expected version %d, stored %d", errRotationConflict, expect, stored)
	}
	return rs.st.SetCtx(ctx, rotationKey, raw, 0)
}

// announce tells every instance to re-read the state. A lost announcement
// only delays others until their next periodic re-read.
func (rs rotationStore) announce(ctx context.Context, version int64) error {
	return rs.st.Publish(ctx, RotationChannel, []byte(strconv.FormatInt(version, 10)))
}

// InstanceReport is what one instance last said about its keys, so an
// operator asking any instance sees problems on all of them.
type InstanceReport struct {
	ID string `json:"id"`
	// Version of the rotation state the instance has applied.
	Version int64 `json:"version"`
	// Signing is the kid it signs with now.
	Signing string `json:"signing"`
	// KeysDir lists the kids its keys_dir holds.
	KeysDir []string `json:"keys_dir"`
	// Missing lists kids the rotation needs that its keys_dir lacks.
	Missing  []string  `json:"missing,omitempty"`
	Problems []string  `json:"problems,omitempty"`
	At       time.Time `json:"at"`
}

// reportsTTL bounds how long the reports hash lives without any instance.
const reportsTTL = 24 * time.Hour

func (rs rotationStore) writeReport(ctx context.Context, r InstanceReport) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return rs.st.HSet(ctx, rotationReportsKey, reportsTTL, r.ID, raw)
}

// reports returns the reports not older than fresh; much older ones are
// deleted on the way.
func (rs rotationStore) reports(ctx context.Context, now time.Time, fresh time.Duration) ([]InstanceReport, error) {
	all, err := rs.st.HGetAll(ctx, rotationReportsKey)
	if err != nil {
		return nil, fmt.Errorf("token: read instance reports: %w", err)
	}
	var out []InstanceReport
	var gone []string
	for id, raw := range all {
		var r InstanceReport
		if json.Unmarshal(raw, &r) != nil {
			gone = append(gone, id)
			continue
		}
		age := now.Sub(r.At)
		switch {
		case age <= fresh:
			out = append(out, r)
		case age > time.Hour:
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		_ = rs.st.HDel(ctx, rotationReportsKey, gone...)
	}
	return out, nil
}
