package token

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// What an instance tells the others (ts:keys:instances) and what
// GET /admin/keys shows: both are read from one status value, so a view never
// mixes two moments.

// freshReports is how old a report may be and still count as a live instance.
func (r *Rotator) freshReports() time.Duration { return 3*r.cfg.ReloadInterval + 2*time.Second }

func (r *Rotator) awaitInstances(ctx context.Context, version int64) {
	ctx, cancel := context.WithTimeout(ctx, rotateAwait)
	defer cancel()
	for {
		reports, err := r.rs.reports(ctx, r.now(), r.freshReports())
		if err != nil {
			return
		}
		behind := false
		for _, rep := range reports {
			if rep.Version < version {
				behind = true
			}
		}
		if !behind {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *Rotator) report(s *rotatorStatus) InstanceReport {
	rep := InstanceReport{ID: r.cfg.InstanceID, Version: s.state.Version, KeysDir: s.dir.kids(),
		Missing: slices.Clone(s.missing), At: r.now(), Problems: s.problems()}
	if s.ring != nil {
		rep.Signing = s.ring.SigningKID()
	}
	return rep
}

func (s *rotatorStatus) problems() []string {
	var out []string
	if s.degraded != "" {
		out = append(out, s.degraded)
	}
	if len(s.missing) > 0 {
		out = append(out, fmt.Sprintf("keys_dir lacks %s, needed by rotation version %d", strings.Join(s.missing, ", "), s.state.Version))
	}
	if s.dirErr != nil {
		out = append(out, "keys_dir cannot be read: "+s.dirErr.Error())
	}
	for _, p := range s.dir.problems {
		out = append(out, p.Error())
	}
	if s.buildErr != nil {
		out = append(out, s.buildErr.Error())
	}
	if s.storeFailing {
		out = append(out, "the rotation state cannot be read from the store; following the last one read")
	}
	return out
}

func (r *Rotator) writeReport(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := r.rs.writeReport(ctx, r.report(r.current())); err != nil && ctx.Err() == nil {
		r.log.Debug("key rotation: writing the instance report failed", "err", err)
	}
}

// Keys is the rotation as this instance sees it after a fresh re-read, with
// every live instance's report.
func (r *Rotator) Keys(ctx context.Context) (KeysView, error) {
	if err := r.Refresh(ctx); err != nil {
		return KeysView{}, err
	}
	return r.view(ctx), nil
}

func (r *Rotator) view(ctx context.Context) KeysView {
	now := r.now()
	s := r.current()
	own := r.report(s)
	v := KeysView{
		Version: s.state.Version, Now: now, Signing: own.Signing,
		RotationInProgress: s.state.InProgressAt(now),
		PublishDelay:       r.cfg.PublishDelay.String(), RetireAfter: r.cfg.RetireAfter.String(),
		Audit: slices.Clone(s.state.Audit), Keys: s.keyViews(now),
	}
	for _, p := range own.Problems {
		v.Problems = append(v.Problems, "instance "+own.ID+" (this one): "+p)
	}
	v.Instances = []InstanceReport{own}
	reports, err := r.rs.reports(ctx, now, r.freshReports())
	if err != nil {
		v.Problems = append(v.Problems, "instance reports cannot be read: "+err.Error())
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].ID < reports[j].ID })
	for _, rep := range reports {
		if rep.ID == own.ID {
			continue
		}
		v.Instances = append(v.Instances, rep)
		for _, p := range rep.Problems {
			v.Problems = append(v.Problems, "instance "+rep.ID+": "+p)
		}
		if rep.Version < v.Version {
			v.Problems = append(v.Problems, fmt.Sprintf("instance %s has applied rotation version %d, not %d yet", rep.ID, rep.Version, v.Version))
		}
	}
	if v.Problems == nil {
		v.Problems = []string{}
	}
	if v.Audit == nil {
		v.Audit = []RotationAudit{}
	}
	return v
}

// keyViews lists every key of the schedule with its state at now, then the
// files of keys_dir the schedule does not know (available), sorted for
// display; never nil.
func (s *rotatorStatus) keyViews(now time.Time) []KeyView {
	out := []KeyView{}
	for _, k := range s.state.Keys {
		since, until := k.sinceUntil(now)
		state := k.StateAt(now)
		_, inDir := s.dir.keys[k.KID]
		out = append(out, KeyView{KID: k.KID, Alg: k.Alg, State: state, Since: since, Until: until,
			Published: state != KeyRetired && k.Alg != AlgHS256, InKeysDir: inDir})
	}
	for _, kid := range s.dir.kids() {
		if s.state.Key(kid) == nil {
			out = append(out, KeyView{KID: kid, Alg: s.dir.keys[kid].key.alg, State: KeyAvailable, InKeysDir: true})
		}
	}
	sortKeyViews(out)
	return out
}
