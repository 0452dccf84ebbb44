// Command build-testimages pre-builds drydock's test images into the cache
// (${DRYDOCK_CACHE:-$HOME/.cache/drydock}/testimages), so that later test
// runs reuse them.
//
//	go run ./internal/testimage/cmd/build-testimages [-v] [-j N] [-rebuild] [names...]
//
// Without names it builds the whole catalog and the multi-arch index. It
// prints, per image, whether it was built or reused, the time and the size.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/testimage"
)

func main() {
	verbose := flag.Bool("v", false, "show the build tools' output")
	jobs := flag.Int("j", 2, "images built in parallel")
	rebuild := flag.Bool("rebuild", false, "rebuild even when cached")
	list := flag.Bool("list", false, "list the catalog and exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: build-testimages [flags] [names...]\n\n")
		flag.PrintDefaults()
		fmt.Fprintf(flag.CommandLine.Output(), "\nnames: %s\n", strings.Join(names(), " "))
	}
	flag.Parse()
	if *list {
		fmt.Println(strings.Join(names(), "\n"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, flag.Args(), *jobs, *verbose, *rebuild); err != nil {
		fmt.Fprintln(os.Stderr, "build-testimages:", err)
		os.Exit(1)
	}
}

func names() []string {
	var out []string
	for _, s := range testimage.Catalog() {
		out = append(out, s.Name)
	}
	for name := range testimage.Indexes() {
		out = append(out, name)
	}
	sort.Strings(out[len(testimage.Catalog()):])
	return out
}

func run(ctx context.Context, args []string, jobs int, verbose, rebuild bool) error {
	if len(args) == 0 {
		args = names()
	}
	var specs []testimage.Spec
	var indexes []string
	for _, a := range args {
		if _, ok := testimage.Indexes()[a]; ok {
			indexes = append(indexes, a)
			continue
		}
		s, ok := testimage.Lookup(a)
		if !ok {
			return fmt.Errorf("unknown image %q (known: %s)", a, strings.Join(names(), " "))
		}
		specs = append(specs, s)
	}
	m, err := testimage.Mirror()
	if err != nil {
		return err
	}
	dir, err := testimage.DefaultCacheDir()
	if err != nil {
		return err
	}
	fmt.Printf("mirror %s (security %s), cache %s/testimages\n", m.URI, m.SecurityURI, dir)
	var opts []testimage.Option
	var mu sync.Mutex
	if verbose {
		opts = append(opts, testimage.WithLog(lockedWriter{&mu, os.Stderr}))
	}
	if rebuild {
		opts = append(opts, testimage.WithRebuild())
	}
	need := specs
	for _, name := range indexes {
		need = append(need[:len(need):len(need)], testimage.Indexes()[name]...)
	}
	for _, s := range need {
		if err := testimage.Check(ctx, s, opts...); err != nil {
			return err
		}
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(jobs, 1))
	report := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format, a...)
	}
	for _, s := range specs {
		g.Go(func() error {
			t := time.Now()
			img, err := testimage.Build(gctx, s, opts...)
			if err != nil {
				return err
			}
			report("%-8s %-26s %-14s %6.1f MB  %6.1fs  %s\n", verb(img.Reused), s.Name, img.Platform.String(),
				float64(img.Size)/1e6, time.Since(t).Seconds(), img.Digest)
			return nil
		})
	}
	for _, name := range indexes {
		g.Go(func() error {
			t := time.Now()
			idx, err := testimage.BuildIndex(gctx, name, testimage.Indexes()[name], opts...)
			if err != nil {
				return err
			}
			var plats []string
			for _, i := range idx.Images {
				plats = append(plats, i.Platform.String())
			}
			sort.Strings(plats)
			report("%-8s %-26s %-14s %9s  %6.1fs  %s\n", verb(idx.Reused), idx.Name, strings.Join(plats, ","),
				"", time.Since(t).Seconds(), idx.Digest)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Printf("done in %.1fs\n", time.Since(start).Seconds())
	return nil
}

func verb(reused bool) string {
	if reused {
		return "reused"
	}
	return "built"
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
