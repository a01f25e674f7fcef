package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

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

// rotationStore keeps the state as one versioned JSON value (its "version"
// is RotationState.Version), changed by the store's compare-and-set.
type rotationStore struct{ st store.Store }

func (rs rotationStore) load(ctx context.Context) (RotationState, bool, error) {
	raw, _, err := rs.st.GetVersioned(ctx, rotationKey)
	if errors.Is(err, store.ErrWrongType) {
		return RotationState{}, false, fmt.Errorf("%w: stored value is not a versioned JSON document: %v", ErrRotationState, err)
	}
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
	err = rs.st.CompareAndSet(ctx, rotationKey, expect, raw, 0)
	switch {
	case errors.Is(err, store.ErrVersionConflict):
		return fmt.Errorf("%w: %w", errRotationConflict, err)
	case err != nil:
		return fmt.Errorf("token: store rotation state: %w", err)
	}
	return nil
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
