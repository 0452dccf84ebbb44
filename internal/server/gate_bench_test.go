package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/gate/gatetest"
	"github.com/drydock-project/drydock/internal/testimage"
)

// BenchmarkGateArrivalToVerdict measures, over real HTTP with the real
// scanner and data, the time from the end of a push into quarantine/ to a
// finished verdict, and the time of a promotion of the exempted digest.
// The first iteration scans cold; the others push the same image under a
// new name, whose scan reads the inventory stored by manifest digest.
//
//	go test -run '^$' -bench GateArrival -benchtime 5x ./internal/server
func BenchmarkGateArrivalToVerdict(b *testing.B) {
	ti := testimage.Require(b, testimage.Bookworm)
	g := startGateServer(b, strictPolicy)
	var scan, promote time.Duration
	for i := 0; b.Loop(); i++ {
		ref := fmt.Sprintf("quarantine/bench%d:1", i)
		g.push(ti, ref)
		start := time.Now()
		st := g.waitScanned(ref)
		scan += time.Since(start)
		g.vex(fmt.Sprintf("bench%d.json", i), fmt.Sprintf("quarantine/bench%d", i), gatetest.FailingCVEs(st.Verdict), time.Now().AddDate(1, 0, 0))
		start = time.Now()
		if code := g.api("POST", "/api/v1/promote", map[string]string{"source": ref}, nil); code != http.StatusOK {
			b.Fatalf("promote: %d", code)
		}
		promote += time.Since(start)
	}
	b.ReportMetric(float64(scan.Milliseconds())/float64(b.N), "ms-to-verdict/op")
	// The scan itself, as the server measured it.
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var sum, count float64
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "drydock_gate_scan_duration_seconds_sum "); ok {
			sum, _ = strconv.ParseFloat(v, 64)
		}
		if v, ok := strings.CutPrefix(line, "drydock_gate_scan_duration_seconds_count "); ok {
			count, _ = strconv.ParseFloat(v, 64)
		}
	}
	if count > 0 {
		b.ReportMetric(sum/count*1000, "ms-scan/op")
	}
	b.ReportMetric(float64(promote.Milliseconds())/float64(b.N), "ms-promote/op")
}
