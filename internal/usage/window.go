package usage

import (
	"time"

	"github.com/tokenshift/tokenshift/internal/auth"
)

// Buckets are identified by their start in unix seconds.
const (
	minuteSeconds = 60
	hourSeconds   = 3600
)

// minuteWindowMax: windows up to this long are read (and charted) per minute;
// longer ones per hour, with the partial first hour read per minute while
// minute buckets still exist.
const minuteWindowMax = 2 * time.Hour

func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// windowPlan says which buckets cover a window ending now.
type windowPlan struct {
	window   time.Duration
	from, to int64 // covered span, unix seconds: from is a bucket start, to is now
	step     time.Duration
	minutes  []int64
	hours    []int64
	// userHours are the hour buckets of distinct-user sketches, which only
	// exist per hour: the user figure covers whole hours.
	userHours []int64
}

func planWindow(now time.Time, window, minuteKeep time.Duration) windowPlan {
	end := now.Unix()
	start := now.Add(-window).Unix()
	startMin := floorTo(start, minuteSeconds)
	p := windowPlan{window: window, to: end}
	if window <= minuteWindowMax {
		p.step = time.Minute
		p.from = startMin
		for m := startMin; m <= end; m += minuteSeconds {
			p.minutes = append(p.minutes, m)
		}
	} else {
		p.step = time.Hour
		h0 := floorTo(start, hourSeconds)
		firstHour := h0
		p.from = h0
		// Minute buckets expire minuteKeep after their end; the margin keeps
		// us from reading one that is about to go.
		if startMin > h0 && startMin >= end-int64(minuteKeep/time.Second)+hourSeconds {
			for m := startMin; m < h0+hourSeconds; m += minuteSeconds {
				p.minutes = append(p.minutes, m)
			}
			firstHour = h0 + hourSeconds
			p.from = startMin
		}
		for h := firstHour; h <= end; h += hourSeconds {
			p.hours = append(p.hours, h)
		}
	}
	for h := floorTo(p.from, hourSeconds); h <= end; h += hourSeconds {
		p.userHours = append(p.userHours, h)
	}
	return p
}

// readQuery asks a back end for buckets and figures.
type readQuery struct {
	minutes   []int64
	hours     []int64
	userHours []int64 // nil = distinct users not wanted
	lastSeen  bool
	sources   []string // legacy sources whose distinct users are wanted
}

func (p windowPlan) query(users, lastSeen bool) readQuery {
	q := readQuery{minutes: p.minutes, hours: p.hours, lastSeen: lastSeen}
	if users {
		q.userHours = p.userHours
	}
	return q
}

// lastSeenCut is the oldest last-seen time still kept (unix seconds): both
// back ends drop older entries, and reports ignore them, so a client's last
// use is forgotten together with the hour buckets that counted it.
func lastSeenCut(now int64, retention time.Duration) int64 {
	return now - int64(retention/time.Second) - hourSeconds
}

type bucketCounts map[fieldKey]int64

// rawData is what a back end returns; minutes and hours are aligned with the
// query's bucket lists.
type rawData struct {
	minutes  []bucketCounts
	hours    []bucketCounts
	users    [auth.NumSchemes]int64
	usersAll int64
	last     map[clientScheme]int64
	// srcUsers and lastSources: per legacy source, distinct users (with
	// userHours) and last accepted use (with lastSeen).
	srcUsers    map[string]int64
	lastSources map[string]int64
	since       int64 // 0 = aggregation start not recorded
	lost        int64 // last time Redis was found to have lost data; 0 = never
}
