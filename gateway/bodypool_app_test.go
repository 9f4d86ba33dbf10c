package gateway_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestAppBodyBuffersReused: request bodies' buffers are reused once their
// requests are committed (bodypool.go). Through the real app, with no
// transform (every record written is a slice of its request's body), four
// batches in flight and concurrent clients posting bodies of many sizes
// (some gzip, some with a line that is not JSON), every record written is
// exactly an event that was sent, each once: a buffer reused while a
// record of it was still to be written would show as a changed or repeated
// line.
func TestAppBodyBuffersReused(t *testing.T) {
	const requests, clients = 600, 24
	var out lockedBuffer
	app := startApp(t, &out, "--sink", "stdout", "--driver-depth", "4")
	url := "http://" + app.HTTPAddr() + "/v1/events"
	c := &fasthttp.Client{MaxConnsPerHost: clients}
	var want []string
	bodies := make([][]byte, requests)
	gz := make([]bool, requests)
	for r := range bodies {
		var b bytes.Buffer
		n := 1 + (r*37)%300 // 80 B … 30 KB: several size classes
		for i := range n {
			ev := fmt.Sprintf(`{"req":%d,"i":%d,"pad":%q}`, r, i, strings.Repeat(string(rune('a'+(r+i)%26)), (r*i)%90))
			want = append(want, ev)
			b.WriteString(ev + "\n")
			if r%11 == 0 && i == 0 {
				b.WriteString("not json\n") // a receiver dead letter, written with its bytes
				want = append(want, `{"dead_letter":{"reason":"parse error: line 2 is not valid JSON","stage":"receiver"},"value":"not json"}`)
			}
		}
		bodies[r] = b.Bytes()
		if r%5 == 0 {
			var z bytes.Buffer
			w := gzip.NewWriter(&z)
			w.Write(b.Bytes())
			w.Close()
			bodies[r], gz[r] = z.Bytes(), true
		}
	}
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := w; r < requests; r += clients {
				h := []string{"Content-Type", "application/x-ndjson"}
				if gz[r] {
					h = append(h, "Content-Encoding", "gzip")
				}
				if code, body := post(t, c, url, bodies[r], h...); code != 200 {
					t.Errorf("request %d: %d %s", r, code, body)
				}
			}
		}()
	}
	wg.Wait()
	if err := app.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if len(got) != len(want) {
		shown := 0
		for i, g := range got {
			if _, ok := slices.BinarySearch(want, g); !ok || i > 0 && got[i-1] == g {
				if shown++; shown < 4 {
					t.Log(g)
				}
			}
		}
		t.Fatalf("%d records written, %d sent", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d written as %q, sent %q", i, got[i], want[i])
		}
	}
}
