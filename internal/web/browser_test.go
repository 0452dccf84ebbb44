package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gate/gatetest"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/testenv"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
	"github.com/drydock-project/drydock/internal/workflow"
)

// axeVersion is the axe-core the Makefile's axe target fetches (keep
// them equal).
const axeVersion = "4.10.3"

// TestBrowser drives the web UI in Debian's chromium, headless, against a
// real `drydock serve` with a real test image scanned by the real
// scanner on real vulnerability data: sign in, the dashboard's numbers
// against the API's, an image and its findings filtered, exceptions added
// until the verdict changes, the audit log. Every page gets a screenshot
// (in the test's artifact directory) and an axe-core check: no serious or
// critical violation. Then: a promotion refused with its reason and one
// that goes through, the policy page's validation, and a workflow run
// started from the UI and followed to its end. One server, one browser,
// all pages in one test.
func TestBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "no chromium (Debian package chromium, in TEST_DEBS)")
	}
	cache, err := testimage.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	axeJS, err := os.ReadFile(filepath.Join(cache, "tools", "axe-core-"+axeVersion, "axe.min.js"))
	if err != nil {
		testenv.Missing(t, "no axe-core %s: run `make axe` (%v)", axeVersion, err)
	}
	img := testimage.Require(t, testimage.Bookworm)
	data := t.TempDir()
	realdb.Copy(t, vulndb.DefaultPath(data))

	bin := filepath.Join(t.TempDir(), "drydock")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/drydock-project/drydock/cmd/drydock").CombinedOutput(); err != nil {
		t.Fatalf("build drydock: %v\n%s", err, out)
	}
	cfgDir := t.TempDir()
	policy := filepath.Join(cfgDir, "policy.yaml")
	write(t, policy, "version: v1\nmaxSeverity: HIGH\nblockEndOfLife: false\n")
	cfg := filepath.Join(cfgDir, "drydock.yaml")
	write(t, cfg, "gate: {policy: "+policy+"}\n")
	srv := startServe(t, bin, data, cfg)
	pw, err := os.ReadFile(filepath.Join(data, "auth", "initial-admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(pw))
	authURL := "http://admin:" + url.QueryEscape(admin) + "@" + srv.addr
	if out, err := exec.Command(bin, "import", img.OCIReference(), "--as", "bookworm:12", "--server", authURL).CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	a := &apiClient{t: t, base: "http://" + srv.addr, pass: admin}
	var st gatekeeper.Status
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(300 * time.Millisecond) {
		a.get("/api/v1/verdict?ref=quarantine/bookworm:12", &st)
		if !st.Scan.ScannedAt.IsZero() || st.Scan.Error != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not scanned in 5 minutes: %+v\n%s", st, srv.logs())
		}
	}
	failing := gatetest.FailingCVEs(st.Verdict)
	if st.Verdict.State != gate.StateFail || len(failing) == 0 {
		t.Fatalf("the test image should fail the policy: %+v", st.Verdict)
	}
	t.Logf("%s fails on %d CVEs: %v", st.Digest, len(failing), failing)

	shots := t.ArtifactDir()
	t.Logf("screenshots in %s", shots)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-component-update", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTime := context.WithTimeout(ctx, 15*time.Minute)
	defer cancelTime()
	// Start the browser on ctx itself: steps run on contexts with their
	// own time-outs, and the first step's context would own the browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// dump shows where the browser is when a step fails.
	dump := func() string {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(dctx, chromedp.Location())
		html, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("main")))
		return loc + "\n" + html
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, dump())
		}
	}
	// navigate runs steps that load a new page and waits for it.
	navigate := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		resp, err := chromedp.RunResponse(sctx, steps...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, dump())
		}
		if resp.Status != 200 {
			t.Fatalf("%s: HTTP %d\n%s", what, resp.Status, dump())
		}
	}
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// check saves a screenshot of the page and runs axe-core in it.
	check := func(name string) {
		t.Helper()
		// The UI's CSP allows no script: let the test inject axe.
		_, err := chromedp.Call(ctx, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true})
		must(err, "bypass CSP")
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		must(err, "screenshot "+name)
		_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](string(axeJS)+";true"))
		must(err, "inject axe-core")
		var res axeResult
		res.Violations, err = chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](`axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.html)})))`,
			chromedp.EvalAwaitPromise))
		must(err, "axe-core on "+name)
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, v := range res.Violations {
			if v.Impact == "serious" || v.Impact == "critical" {
				t.Errorf("page %s: axe %s violation %s (%s) at %v", name, v.Impact, v.ID, v.Help, v.Nodes)
			} else {
				t.Logf("page %s: axe %s violation %s (%s)", name, v.Impact, v.ID, v.Help)
			}
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		must(err, "read "+sel)
		return strings.TrimSpace(s)
	}

	// Sign in: the UI sends the browser to the sign-in page and back.
	run("open the dashboard", chromedp.Navigate("http://"+srv.addr+"/"), chromedp.WaitVisible(chromedp.CSS("#user")))
	check("login")
	run("sign in", chromedp.SendKeys(chromedp.CSS("#user"), "admin"), chromedp.SendKeys(chromedp.CSS("#password"), admin),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#images-total")))
	check("dashboard")

	// The dashboard's numbers are the API's.
	var vs api.VerdictsResponse
	a.get("/api/v1/verdicts", &vs)
	byState := map[gate.State]int{}
	for _, im := range vs.Images {
		byState[im.Verdict.State]++
	}
	if got := text("#images-total"); got != strconv.Itoa(len(vs.Images)) {
		t.Errorf("dashboard: %s images, the API %d", got, len(vs.Images))
	}
	for _, s := range []gate.State{gate.StateFail, gate.StatePass, gate.StatePending, gate.StateExempt} {
		if got := text("#count-" + string(s)); got != strconv.Itoa(byState[s]) {
			t.Errorf("dashboard: %s %s, the API %d", got, s, byState[s])
		}
	}
	var fixable api.FindingsResponse
	a.get("/api/v1/findings?fixable=true&digest="+st.Digest, &fixable)
	total := 0
	for _, sev := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"} {
		total += fixable.Counts[sev]
		if got := text("#fixable-" + sev); got != strconv.Itoa(fixable.Counts[sev]) {
			t.Errorf("dashboard: %s fixable %s findings, the API %d", got, sev, fixable.Counts[sev])
		}
	}
	if got := text("#fixable-total"); got != strconv.Itoa(total) {
		t.Errorf("dashboard: %s fixable findings, the API %d", got, total)
	}
	var totals api.TotalsResponse
	a.get("/api/v1/findings/totals", &totals)
	if got := text("#fixable-cves"); got != strconv.Itoa(totals.UniqueFixableCVEs) || totals.UniqueFixableCVEs != fixable.UniqueCVEs {
		t.Errorf("dashboard: %s unique fixable CVEs, the index %d, the image's findings %d", got, totals.UniqueFixableCVEs, fixable.UniqueCVEs)
	}
	if got := text("#unique-cves"); got != strconv.Itoa(totals.UniqueCVEs) {
		t.Errorf("dashboard: %s unique CVEs, the API %d", got, totals.UniqueCVEs)
	}

	// The images list, then the image.
	run("images", chromedp.Navigate("http://"+srv.addr+"/ui/images?verdict=fail"), chromedp.WaitVisible(chromedp.CSS("#images-count")))
	check("images")
	navigate("open the image", chromedp.Click(chromedp.CSS(`a[href*="`+strings.TrimPrefix(st.Digest, "sha256:")+`"]`)))
	run("the image page", chromedp.WaitVisible(chromedp.CSS("#verdict")))
	if got := text("#verdict"); got != "fail" {
		t.Errorf("image page verdict %q, want fail", got)
	}
	check("image")
	var all api.FindingsResponse
	a.get("/api/v1/findings?digest="+st.Digest, &all)
	if got := text("#shown"); got != strconv.Itoa(len(all.Findings)) {
		t.Errorf("image page shows %s findings, the API %d", got, len(all.Findings))
	}

	// Its platforms, layers, packages and referrers, each as the API has
	// them.
	var det api.ImageDetail
	a.get("/api/v1/images/"+st.Digest, &det)
	if got := text("#platform-count"); got != strconv.Itoa(len(det.Platforms)) || len(det.Platforms) != 1 {
		t.Errorf("image page: %s platforms, the API %d", got, len(det.Platforms))
	}
	if got := text(".layers .layer-digest"); len(det.Platforms) == 0 || got != det.Platforms[0].Layers[0].Digest {
		t.Errorf("image page: first layer %s, the API %+v", got, det.Platforms)
	}
	var pkgs api.PackagesResponse
	a.get("/api/v1/images/"+st.Digest+"/packages?limit=50", &pkgs)
	if got := text("#packages-total"); got != strconv.Itoa(pkgs.Total) || pkgs.Total < 50 || text("#packages tbody tr td a") != pkgs.Packages[0].Name {
		t.Errorf("image page: %s packages, first %s; the API %d, first %s", got, text("#packages tbody tr td a"), pkgs.Total, pkgs.Packages[0].Name)
	}
	var refs api.ReferrersResponse
	a.get("/api/v1/images/"+st.Digest+"/referrers", &refs)
	if len(refs.Groups) == 0 || !strings.HasPrefix(text(".referrer-class"), refs.Groups[0].Class+" (") {
		t.Errorf("image page: referrers %q, the API %+v", text(".referrer-class"), refs.Groups)
	}
	imageURL, err := chromedp.Run(ctx, chromedp.Location())
	must(err, "the image page's URL")
	navigate("filter the packages", chromedp.SetValue(chromedp.CSS("#pkg"), "libc6"), chromedp.Click(chromedp.CSS("#pkg-filter")))
	var libc api.PackagesResponse
	a.get("/api/v1/images/"+st.Digest+"/packages?limit=50&name=libc6", &libc)
	if got := text("#packages-total"); got != strconv.Itoa(libc.Total) || libc.Total == 0 || text("#packages tbody tr td a") != "libc6" {
		t.Errorf("packages named libc6: %s on the page, the API %d", got, libc.Total)
	}
	check("image-packages")
	navigate("open a referrer", chromedp.Click(chromedp.CSS(`#h-referrers ~ ul a[href^="/ui/artifact"]`)))
	if got := text("#manifest"); !strings.Contains(got, refs.Groups[0].Referrers[0].ArtifactType) {
		t.Errorf("the referrer's page shows %q", got)
	}
	check("artifact")
	navigate("back to the image", chromedp.Navigate(imageURL))

	// Filter the findings by the severity that fails the policy.
	navigate("filter", chromedp.SetValue(chromedp.CSS("#severity"), "CRITICAL"), chromedp.Click(chromedp.CSS("#filter")))
	run("the filtered page", chromedp.WaitReady(chromedp.CSS(`#severity option[value="CRITICAL"][selected]`)))
	var crit api.FindingsResponse
	a.get("/api/v1/findings?severity=CRITICAL&digest="+st.Digest, &crit)
	if got := text("#shown"); got != strconv.Itoa(len(crit.Findings)) || len(crit.Findings) == 0 || len(crit.Findings) == len(all.Findings) {
		t.Errorf("filtered: %s findings shown, the API %d of %d", got, len(crit.Findings), len(all.Findings))
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	must(err, "location")
	if !strings.Contains(loc, "severity=CRITICAL") {
		t.Errorf("the filter is not in the URL: %s", loc)
	}
	check("image-filtered")

	// Promote it now: the gate refuses, and the page says why.
	navigate("promote a failing image", chromedp.Click(chromedp.CSS("#promote")))
	if msg := text(".banner.bad"); !strings.Contains(msg, "Promotion refused by the gate") || !strings.Contains(msg, "verdict is fail") {
		t.Errorf("a refused promotion says %q", msg)
	}
	check("image-promote-refused")

	// An exception per failing CVE, through the image page's form, until
	// the verdict changes.
	for i, cve := range failing {
		navigate("add exception "+cve,
			chromedp.SetValue(chromedp.CSS("#ex-cve"), cve),
			chromedp.SetValue(chromedp.CSS("#ex-reason"), "not reachable in our use ("+cve+")"),
			chromedp.Click(chromedp.CSS("#add-exception")))
		msg := text(".banner.ok, .banner.bad")
		if !strings.Contains(msg, cve) {
			t.Fatalf("exception %d (%s): the page says %q", i+1, cve, msg)
		}
		if !strings.HasPrefix(msg, "Exception ") {
			t.Fatalf("exception %d (%s): %s", i+1, cve, msg)
		}
	}
	if got := text("#verdict"); got != "exempt" {
		t.Errorf("after %d exceptions the page says %q, want exempt", len(failing), got)
	}
	a.get("/api/v1/verdict?ref=quarantine/bookworm:12", &st)
	if st.Verdict.State != gate.StateExempt {
		t.Errorf("the API says %s after the exceptions", st.Verdict.State)
	}
	check("image-exempt")

	// The CVE page, from the image's finding: where it is, and that an
	// exception exempts the image until its expiry.
	cve := failing[0]
	imagePage, err := chromedp.Run(ctx, chromedp.Location())
	must(err, "the image page's URL")
	navigate("open the CVE page", chromedp.Click(chromedp.CSS(`#findings a[href="/ui/cves/`+cve+`"]`)))
	run("the CVE page", chromedp.WaitVisible(chromedp.CSS("#cve-digests")))
	var where api.WhereResponse
	a.get("/api/v1/cves/"+cve, &where)
	if got := text("#cve-digests"); got != strconv.Itoa(where.Digests) || where.Digests != 1 {
		t.Errorf("CVE page: %s images, the API %d (want 1)", got, where.Digests)
	}
	if len(where.Images) != 1 || where.Images[0].Digest != st.Digest || len(where.Images[0].Exemptions) == 0 {
		t.Fatalf("the API's %s: %+v", cve, where)
	}
	until := where.Images[0].Exemptions[0].Expires.UTC().Format("2006-01-02 15:04 UTC")
	if got := text("#cve-images .until"); got != until {
		t.Errorf("CVE page: exempt until %q, the API %q", got, until)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/ui/cves/"+cve) {
		t.Errorf("the CVE page's URL is %s", loc)
	}
	check("cve")
	navigate("back to the image", chromedp.Navigate(imagePage))

	// Promote from the UI, as "drydock promote" does.
	navigate("promote", chromedp.SetValue(chromedp.CSS("#promote-target"), "live/bookworm:12"), chromedp.Click(chromedp.CSS("#promote")))
	if msg := text(".banner.ok"); !strings.Contains(msg, "Promoted to live/bookworm:12") {
		t.Errorf("promotion: the page says %q", msg)
	}
	var live gatekeeper.Status
	a.get("/api/v1/verdict?ref=live/bookworm:12", &live)
	if live.Digest != st.Digest {
		t.Errorf("live/bookworm:12 is %s, want %s", live.Digest, st.Digest)
	}
	check("image-promoted")

	// The policy page: the server's policy is a file, so the form only
	// validates; a bad text comes back with its problem named inline.
	run("policy", chromedp.Navigate("http://"+srv.addr+"/ui/policy"), chromedp.WaitVisible(chromedp.CSS("#policy")))
	if got := text("#policy-source"); got != "file" {
		t.Errorf("policy source %q, want file", got)
	}
	run("validate a bad policy", chromedp.SetValue(chromedp.CSS("#policy"), "version: v1\nmaxSeverity: EXTREME\n"),
		chromedp.Click(chromedp.CSS("#policy-validate")), chromedp.WaitVisible(chromedp.CSS("#policy-problems")))
	if got := text("#policy-problems"); !strings.Contains(got, "line 2: maxSeverity:") {
		t.Errorf("the policy's problems say %q", got)
	}
	check("policy-invalid")

	// A workflow run, started from the UI, followed to its end by the
	// page's own refresh. It patches a real image (bookworm:12.0 →
	// 12.0-1), so its page is seen unfinished and reloading first. The
	// image records libc6 at an old version: fixable findings, which the
	// patch removes (the test image itself has none in this data).
	base, err := img.Open()
	must(err, "open the test image")
	downgraded, err := testimage.DowngradedTo(base, map[string]string{"libc6": "2.36-1"})
	must(err, "downgrade libc6")
	oldRef, err := name.ParseReference(srv.addr+"/quarantine/bookworm:12.0", name.Insecure)
	must(err, "reference")
	must(remote.Write(oldRef, downgraded, remote.WithAuth(&authn.Basic{Username: "admin", Password: admin})), "push bookworm:12.0")
	oldDigest, err := downgraded.Digest()
	must(err, "digest")
	a.do("POST", "/api/v1/workflows", workflow.CreateRequest{Name: "nightly", Schedule: "1d",
		Config: `{"version": "v1", "tag-convention": "incremental", "repositories": [{"repository": "bookworm", "tags": ["12.0"], "enabled": true}]}`}, nil)
	run("workflows", chromedp.Navigate("http://"+srv.addr+"/ui/workflows"), chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Run workflow nightly now"]`)))
	check("workflows")
	navigate("run now", chromedp.Click(chromedp.CSS(`button[aria-label="Run workflow nightly now"]`)))
	first := text("#run-state")
	if first == "succeeded" || first == "failed" || first == "canceled" {
		t.Fatalf("the run's first page shows it %s already: nothing to follow\n%s", first, srv.logs())
	}
	// A mark in this document: a page that reloads itself loses it. (A
	// reload can race the mark: try again on the new document, for as
	// long as a reload may take on a loaded machine.)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`window.drydockFirstLoad = true`)); err == nil || time.Now().After(deadline) {
			break
		}
	}
	must(err, "mark the page")
	// A screenshot of the run in progress; no axe here, the page reloads
	// under it (axe runs on the finished run's page below).
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		if err := os.WriteFile(filepath.Join(shots, "workflow-run-progress.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("no screenshot of the run in progress: %v", err)
	}
	{
		sctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
		err := chromedp.Do(sctx, chromedp.WaitVisible(chromedp.CSS("#run-state.succeeded, #run-state.failed, #run-state.canceled")))
		cancel()
		if err != nil {
			t.Fatalf("the run did not end in 8 minutes: %v\n%s\n%s", err, dump(), srv.logs())
		}
	}
	if got := text("#run-state"); got != "succeeded" {
		t.Errorf("the run ended %q (first seen %s)\n%s", got, first, dump())
	}
	if marked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.drydockFirstLoad === true`)); err != nil || marked {
		t.Errorf("the run page did not reload itself between %s and the end (%v)", first, err)
	}
	if refresh, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('meta[http-equiv="refresh"]').length`)); err != nil || refresh != 0 {
		t.Errorf("a finished run's page still refreshes (%d, %v)", refresh, err)
	}
	check("workflow-run")
	run("back to the workflows", chromedp.Navigate("http://"+srv.addr+"/ui/workflows"), chromedp.WaitVisible(chromedp.CSS("table.runs")))
	if got := text("table.runs tbody tr td:nth-child(2)"); got != "succeeded" {
		t.Errorf("the workflows page lists the run as %q", got)
	}

	// The patch's image page: its lineage, and what the patch removed, as
	// the API has them.
	var patched gatekeeper.Status
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(300 * time.Millisecond) {
		a.get("/api/v1/verdict?ref=quarantine/bookworm:12.0-1", &patched)
		if !patched.Scan.ScannedAt.IsZero() || patched.Scan.Error != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the patch is not scanned in 5 minutes: %+v", patched)
		}
	}
	var lin api.LineageResponse
	a.get("/api/v1/images/"+patched.Digest+"/lineage", &lin)
	if len(lin.Steps) != 2 || lin.Steps[0].Digest != oldDigest.String() || len(lin.Steps[1].Removed) == 0 {
		t.Fatalf("the patch's lineage: %+v", lin)
	}
	run("the patch's page", chromedp.Navigate("http://"+srv.addr+"/ui/image?digest="+url.QueryEscape(patched.Digest)), chromedp.WaitVisible(chromedp.CSS("#lineage")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#lineage > li").length`)); err != nil || n != len(lin.Steps) {
		t.Errorf("the patch's page lists %d lineage steps (%v), the API %d", n, err, len(lin.Steps))
	}
	if got := text("#lineage .removed-count"); got != strconv.Itoa(len(lin.Steps[1].Removed)) {
		t.Errorf("the patch's page: it removed %s findings, the API %d", got, len(lin.Steps[1].Removed))
	}
	check("image-patched")
	// The original's page lists the patch among its patches.
	var orig api.LineageResponse
	a.get("/api/v1/images/"+oldDigest.String()+"/lineage", &orig)
	if len(orig.Patches) != 1 || orig.Patches[0].Digest != patched.Digest || len(orig.Patches[0].Removed) != len(lin.Steps[1].Removed) {
		t.Fatalf("the original's patches: %+v", orig.Patches)
	}
	run("the original's page", chromedp.Navigate("http://"+srv.addr+"/ui/image?digest="+url.QueryEscape(oldDigest.String())), chromedp.WaitVisible(chromedp.CSS("#patches")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#patches > li").length`)); err != nil || n != len(orig.Patches) {
		t.Errorf("the original's page lists %d patches (%v), the API %d", n, err, len(orig.Patches))
	}
	if got := text("#patches .removed-count"); got != strconv.Itoa(len(orig.Patches[0].Removed)) {
		t.Errorf("the original's page: its patch removed %s findings, the API %d", got, len(orig.Patches[0].Removed))
	}

	// The audit log records the exceptions, newest first.
	run("audit", chromedp.Navigate("http://"+srv.addr+"/ui/audit?action=exception"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#audit tbody tr").length`))
	must(err, "audit rows")
	if rows != len(failing) {
		t.Errorf("the audit log lists %d exception records, want %d", rows, len(failing))
	}
	check("audit")

	// The dashboard's chart of fixable findings over time and its
	// end-of-life list, once a bullseye image (past its public security
	// support) is scanned too: the chart's last values are the index's
	// totals, the list is the API's.
	old := testimage.Require(t, testimage.BullseyeNginxCurl)
	if out, err := exec.Command(bin, "import", old.OCIReference(), "--as", "bullseye:11", "--server", authURL).CombinedOutput(); err != nil {
		t.Fatalf("import bullseye: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(300 * time.Millisecond) {
		var bs gatekeeper.Status
		a.get("/api/v1/verdict?ref=quarantine/bullseye:11", &bs)
		if !bs.Scan.ScannedAt.IsZero() || bs.Scan.Error != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bullseye not scanned in 5 minutes: %+v\n%s", bs, srv.logs())
		}
	}
	run("dashboard with history", chromedp.Navigate("http://"+srv.addr+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#fixable-chart")))
	check("dashboard-history")
	a.get("/api/v1/findings/totals", &totals)
	for _, sev := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"} {
		if totals.Fixable[sev] == 0 {
			continue
		}
		if got := text("#chart-last-" + sev); got != strconv.Itoa(totals.Fixable[sev]) {
			t.Errorf("chart: today's %s %s, the index %d", sev, got, totals.Fixable[sev])
		}
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#fixable-chart svg[role="img"] title, #fixable-chart svg desc, #fixable-chart polyline').length`)); err != nil || n < 3 {
		t.Errorf("the chart has %d of its title, description and lines (%v)", n, err)
	}
	var eol api.EOLResponse
	a.get("/api/v1/images/end-of-life", &eol)
	if got := text("#eol-total"); got != strconv.Itoa(eol.Total) || eol.Total < 1 || !strings.Contains(text("#eol-images"), "quarantine/bullseye") {
		t.Errorf("end-of-life: the dashboard says %s, the API %+v; list %q", got, eol, text("#eol-images"))
	}

	// On a phone (390 CSS pixels wide, touch): no page scrolls sideways
	// as a whole (wide tables scroll inside their own box), and each gets
	// a screenshot and the accessibility check.
	run("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, pg := range []struct{ name, path, wait string }{
		{"phone-dashboard", "/ui/", "#fixable-chart"},
		{"phone-images", "/ui/images", "main table"},
		{"phone-image", "/ui/image?digest=" + url.QueryEscape(st.Digest), "#lineage, #h-lineage"},
		{"phone-cve", "/ui/cves/" + url.PathEscape(failing[0]), "main h1"},
		{"phone-audit", "/ui/audit", "#audit"},
	} {
		run(pg.name, chromedp.Navigate("http://"+srv.addr+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.wait)))
		w, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, window.innerWidth]`))
		must(err, pg.name+" width")
		if len(w) != 2 || w[1] > 400 || w[0] > w[1] {
			wide, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("main *")).filter(e => e.getBoundingClientRect().right > 392 && !e.closest(".scroll")).slice(0, 8).map(e => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))`))
			t.Errorf("%s: the page is %v CSS pixels wide in a window of %v: it scrolls sideways on a phone (widest: %v)", pg.name, w[0:1], w[1:], wide)
		}
		check(pg.name)
	}
}

type axeResult struct {
	Violations []axeViolation
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// apiClient reads the API as the admin.
type apiClient struct {
	t          *testing.T
	base, pass string
}

func (c *apiClient) get(path string, out any) {
	c.t.Helper()
	c.do("GET", path, nil, out)
}

// do calls the API with body as JSON (when not nil); a status other than
// 2xx fails the test.
func (c *apiClient) do(method, path string, body, out any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth("admin", c.pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		c.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out == nil {
		return
	}
	if err := json.Unmarshal(b, out); err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// serve is a running `drydock serve`.
type serve struct {
	addr string
	out  *testenv.LockedBuffer
}

func (s *serve) logs() string { return s.out.String() }

func startServe(t *testing.T, bin, data, cfg string) *serve {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", data, "--config", cfg, "--log-format", "json")
	// The machine's drydock cache: the archive indexes and packages the
	// workflow's patch fetched before.
	cache, err := testimage.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "DRYDOCK_CACHE="+cache)
	out := &testenv.LockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		for _, line := range strings.Split(out.String(), "\n") {
			var rec struct {
				Msg, Addr string
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "drydock serving" {
				return &serve{addr: rec.Addr, out: out}
			}
		}
		select {
		case <-exited:
			t.Fatalf("drydock serve exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("drydock serve did not start in 60s:\n%s", out.String())
		}
	}
}
