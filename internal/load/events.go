package load

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
)

// eventSource renders the events of a request. Event seq is the run-wide
// sequence number of the event (request k carries events k·N … k·N+N-1).
// Implementations are safe for concurrent use: they keep no mutable state.
type eventSource interface {
	// appendEvent appends the event seq (one JSON object, no newline); ts is
	// the send time as tsLayout renders it.
	appendEvent(dst []byte, seq uint64, ts []byte) []byte
	// appendID appends the id of event seq, as written to --record-acks.
	appendID(dst []byte, seq uint64) []byte
}

// tsLayout is the layout of the built-in event's ts field (UTC, always
// len(tsLayout) bytes long for years 1000–9999).
const tsLayout = "2006-01-02T15:04:05.000Z"

// seqWidth is the width of the zero-padded sequence number in built-in event
// ids: ids have a fixed length, so pooled bodies can be patched in place.
// A seq of 10^12 or more is written in full.
const seqWidth = 12

// maxPaddedSeq is the first seq that does not fit seqWidth digits.
const maxPaddedSeq = 1_000_000_000_000

// putDigits writes v as decimal digits, zero-padded to fill b.
func putDigits(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// splitmix64 is the SplitMix64 finaliser: a cheap, well-mixed hash that makes
// every field of the built-in event a pure function of (seed, seq).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

var (
	countries = [...]string{
		"US", "US", "US", "AU", "AU", "NZ", "JP", "JP", "SG", "CA", "BR", "MX",
		"GB", "GB", "DE", "FR", "NL", "IE", "IN", "KR", "ZA", "ES", "SE", "AR",
	}
	userAgents = [...]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
		"Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
		"sluice-load/1 (synthetic)",
	}
	paths     = [...]string{"/", "/pricing", "/docs/getting-started", "/products/", "/cart", "/blog/ingest-at-the-edge", "/search"}
	referrers = [...]string{"https://www.google.com/", "https://news.ycombinator.com/", "", "https://t.co/x", "https://www.bing.com/"}
	elements  = [...]string{"buy-button", "nav-pricing", "signup-cta", "search-box", "add-to-cart"}
	plans     = [...]string{"free", "pro", "team"}
	currency  = [...]string{"USD", "AUD", "JPY", "EUR", "GBP"}
)

// Event kinds of the built-in generator, by share of non-heartbeat events:
// page_view 55 %, click 25 %, purchase 12 %, signup 8 %.
const (
	kindPageView = iota
	kindClick
	kindPurchase
	kindSignup
)

// builtinEvents is the built-in analytics event generator.
type builtinEvents struct {
	seed    uint64
	seedStr []byte
	// heartbeatCut: an event is a heartbeat when its hash's top 32 bits are
	// below it.
	heartbeatCut uint64
}

func newBuiltinEvents(seed uint64, heartbeatShare float64) *builtinEvents {
	return &builtinEvents{
		seed:         seed,
		seedStr:      strconv.AppendUint(nil, seed, 10),
		heartbeatCut: uint64(heartbeatShare * (1 << 32)),
	}
}

// appendID appends "<seed>-<seq>", seq zero-padded to seqWidth digits.
func (g *builtinEvents) appendID(dst []byte, seq uint64) []byte {
	dst = append(dst, g.seedStr...)
	dst = append(dst, '-')
	if seq >= maxPaddedSeq {
		return strconv.AppendUint(dst, seq, 10)
	}
	n := len(dst)
	dst = append(dst, "000000000000"...)
	putDigits(dst[n:], seq)
	return dst
}

// appendEvent renders one event of about 330 bytes (heartbeats: about 160).
// Every field but ts is a pure function of (seed, seq).
func (g *builtinEvents) appendEvent(dst []byte, seq uint64, ts []byte) []byte {
	dst, _, _ = g.render(dst, seq, seq, ts)
	return dst
}

// render appends the event whose id is idSeq and whose other fields (but ts)
// are those of contentSeq, and returns the offsets in dst of the id's
// sequence digits and of ts, where a pooled body is patched.
func (g *builtinEvents) render(dst []byte, idSeq, contentSeq uint64, ts []byte) (out []byte, seqAt, tsAt int) {
	seq := contentSeq
	h := splitmix64(g.seed ^ splitmix64(seq))
	h2 := splitmix64(h)
	user := h2 % 50_000
	dst = append(dst, `{"id":"`...)
	seqAt = len(dst) + len(g.seedStr) + 1
	dst = g.appendID(dst, idSeq)
	heartbeat := h>>32 < g.heartbeatCut
	kind := kindPageView
	switch r := (h >> 8) % 100; {
	case r < 55:
		kind = kindPageView
	case r < 80:
		kind = kindClick
	case r < 92:
		kind = kindPurchase
	default:
		kind = kindSignup
	}
	dst = append(dst, `","event":"`...)
	switch {
	case heartbeat:
		dst = append(dst, "heartbeat"...)
	case kind == kindPageView:
		dst = append(dst, "page_view"...)
	case kind == kindClick:
		dst = append(dst, "click"...)
	case kind == kindPurchase:
		dst = append(dst, "purchase"...)
	default:
		dst = append(dst, "signup"...)
	}
	dst = append(dst, `","ts":"`...)
	tsAt = len(dst)
	dst = append(dst, ts...)
	dst = append(dst, `","user_id":"u-`...)
	dst = strconv.AppendUint(dst, user, 10)
	country := countries[(h2>>16)%uint64(len(countries))]
	if heartbeat {
		dst = append(dst, `","geo":{"country":"`...)
		dst = append(dst, country...)
		dst = append(dst, `"},"props":{"device":"d-`...)
		dst = strconv.AppendUint(dst, user%9973, 16)
		dst = append(dst, `","uptime_s":`...)
		dst = strconv.AppendUint(dst, (h2>>20)%86400, 10)
		return append(dst, `}}`...), seqAt, tsAt
	}
	dst = append(dst, `","email":"user`...)
	dst = strconv.AppendUint(dst, user, 10)
	dst = append(dst, `@example.com","ip":"`...)
	// 203.0.113.0/24 and 198.51.100.0/24 are documentation ranges; the rest
	// of the address space is taken at random for variety.
	dst = strconv.AppendUint(dst, 1+(h2>>24)%223, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, (h2>>32)&0xff, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, (h2>>40)&0xff, 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, 1+(h2>>48)%254, 10)
	dst = append(dst, `","ua":"`...)
	dst = append(dst, userAgents[(h>>40)%uint64(len(userAgents))]...)
	dst = append(dst, `","geo":{"country":"`...)
	dst = append(dst, country...)
	dst = append(dst, `"},"props":{`...)
	switch kind {
	case kindPageView:
		dst = append(dst, `"path":"`...)
		dst = appendPath(dst, h)
		dst = append(dst, `","referrer":"`...)
		dst = append(dst, referrers[(h>>52)%uint64(len(referrers))]...)
		dst = append(dst, '"')
	case kindClick:
		dst = append(dst, `"element":"`...)
		dst = append(dst, elements[(h>>52)%uint64(len(elements))]...)
		dst = append(dst, `","path":"`...)
		dst = appendPath(dst, h)
		dst = append(dst, '"')
	case kindPurchase:
		dst = append(dst, `"order_id":"o-`...)
		dst = strconv.AppendUint(dst, seq, 36)
		dst = append(dst, `","amount":`...)
		dst = strconv.AppendUint(dst, 1+(h>>44)%500, 10)
		dst = append(dst, '.')
		cents := (h >> 12) % 100
		dst = append(dst, byte('0'+cents/10), byte('0'+cents%10))
		dst = append(dst, `,"currency":"`...)
		dst = append(dst, currency[(h>>56)%uint64(len(currency))]...)
		dst = append(dst, `","items":`...)
		dst = strconv.AppendUint(dst, 1+(h>>20)%6, 10)
	default:
		dst = append(dst, `"plan":"`...)
		dst = append(dst, plans[(h>>52)%uint64(len(plans))]...)
		dst = append(dst, `","referrer":"`...)
		dst = append(dst, referrers[(h>>56)%uint64(len(referrers))]...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"session":"s-`...)
	dst = strconv.AppendUint(dst, (h2^user)&0xffffffff, 16)
	return append(dst, `"}}`...), seqAt, tsAt
}

func appendPath(dst []byte, h uint64) []byte {
	p := paths[(h>>48)%uint64(len(paths))]
	dst = append(dst, p...)
	if p == "/products/" {
		dst = strconv.AppendUint(dst, (h>>24)%1000, 10)
	}
	return dst
}

// fileEvents cycles through the lines of an NDJSON file: event seq is line
// seq mod len(lines). Blank lines are skipped when loading.
type fileEvents struct {
	lines [][]byte
	ids   [][]byte // top-level "id" of each line; nil when absent
}

// loadEventsFile reads an NDJSON file. With needIDs it fails with
// ErrEventWithoutID unless every line has a top-level non-empty string or
// number "id".
func loadEventsFile(path string, needIDs bool) (*fileEvents, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("events file: %w", err)
	}
	defer f.Close()
	fe := &fileEvents{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var doc struct {
			ID json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(line, &doc); err != nil {
			return nil, &EventsFileError{Path: path, Line: n, Err: err}
		}
		var id []byte
		if len(doc.ID) > 0 {
			var s string
			if json.Unmarshal(doc.ID, &s) == nil {
				if s != "" {
					id = []byte(s)
				}
			} else if doc.ID[0] == '-' || (doc.ID[0] >= '0' && doc.ID[0] <= '9') {
				id = append([]byte(nil), doc.ID...)
			}
		}
		if needIDs && id == nil {
			return nil, &EventsFileError{Path: path, Line: n, Err: ErrEventWithoutID}
		}
		fe.lines = append(fe.lines, append([]byte(nil), line...))
		fe.ids = append(fe.ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("events file %s: %w", path, err)
	}
	if len(fe.lines) == 0 {
		return nil, &EventsFileError{Path: path, Err: ErrNoEvents}
	}
	return fe, nil
}

func (fe *fileEvents) appendEvent(dst []byte, seq uint64, _ []byte) []byte {
	return append(dst, fe.lines[seq%uint64(len(fe.lines))]...)
}

func (fe *fileEvents) appendID(dst []byte, seq uint64) []byte {
	return append(dst, fe.ids[seq%uint64(len(fe.ids))]...)
}
