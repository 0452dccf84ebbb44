package resolve

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/patch/apt/archive"
	"github.com/drydock-project/drydock/internal/version"
)

// Sentinels of resolution failures, wrapped by *ResolveError.
var (
	// ErrUnsatisfiable: a dependency cannot be met by any available version.
	ErrUnsatisfiable = errors.New("unsatisfiable dependency")
	// ErrConflict: a Breaks or Conflicts cannot be fixed by upgrading.
	ErrConflict = errors.New("unresolvable conflict")
)

// ResolveError is a refused resolution. Chain names how the package at
// fault was reached, e.g. ["wanted nginx", "needs libssl3 (>= 3.1)"].
type ResolveError struct {
	Chain  []string
	Detail string
	Err    error // ErrUnsatisfiable, ErrConflict, or a cause such as a *RelationError
}

func (e *ResolveError) Error() string {
	return fmt.Sprintf("resolving updates: %s: %s: %v", strings.Join(e.Chain, " -> "), e.Detail, e.Err)
}

func (e *ResolveError) Unwrap() error { return e.Err }

// Option configures Resolve.
type Option func(*options) error

type options struct{ maxRounds int }

// WithMaxRounds bounds the number of fixes (upgrades or additions) the
// resolver makes before giving up (default 10000); n must be positive.
func WithMaxRounds(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("apt: WithMaxRounds(%d): must be positive", n)
		}
		o.maxRounds = n
		return nil
	}
}

// Step is one package change of a Resolution.
type Step struct {
	Package string
	From    string // installed version, "" for a new package
	To      string
	// Reason is "requested", "dependency of X" or "breaks fix for X".
	Reason string
	Suite  string
	// Candidate is the index entry to install (URL, Size, SHA256).
	Candidate archive.IndexPackage
}

// Resolution is the changes that upgrade the requested packages with their
// dependencies, sorted by package name.
type Resolution struct {
	Steps []Step
}

// Resolve computes the packages to upgrade or add so that want (binary
// package names) are at their highest candidates from index and every
// Depends and Pre-Depends of the result holds, without Breaks or Conflicts,
// for a single-architecture image of architecture arch. A wanted package
// already at its highest candidate gives no step; one not installed is
// added; one the index lacks is an error.
//
// Dependencies of changed packages are met by the installed state, by the
// plan, by upgrading an installed package (preferred) or by adding a new
// one: the first alternative that can be met, of its candidates the highest
// version, real packages before providers of a virtual one (versioned
// Provides satisfy versioned relations). A package that stays installed and
// whose Depends an upgrade breaks, or that Breaks or is broken by a changed
// package, is upgraded too when a candidate fixes it; relations already
// unmet in the installed state are left alone. Multi-Arch follows dpkg:
// "foreign" satisfies any qualifier, ":any" needs "allowed" or "foreign",
// and "all" counts as arch. Installed packages' relationship fields come
// from the index stanza of their installed version; when the index lacks
// it, they are taken to have none. Packages installed for another
// architecture are ignored. Resolution never downgrades, so it terminates;
// it is also bounded (WithMaxRounds).
func Resolve(arch string, installed []inventory.Package, index []archive.IndexPackage, want []string, opts ...Option) (*Resolution, error) {
	ptrs := make([]*archive.IndexPackage, len(index))
	for i := range index {
		ptrs[i] = &index[i]
	}
	return ResolveIndex(arch, installed, ptrs, want, opts...)
}

// node is one package of the resolver's state.
type node struct {
	name   string
	inst   *inventory.Package    // nil for a new package
	stanza *archive.IndexPackage // index entry of the installed version, if known
	multi  string                // Multi-Arch of the installed version (best guess)
	target *archive.IndexPackage // nil while it stays as installed
	reason string
	by     string // package that pulled it in or forced it
	rel    string // relation that did
}

// cur is the stanza of the node's final version, nil if unknown.
func (n *node) cur() *archive.IndexPackage {
	if n.target != nil {
		return n.target
	}
	return n.stanza
}

func (n *node) version() string {
	if n.target != nil {
		return n.target.Version
	}
	return n.inst.Version
}

func (n *node) multiArch() string {
	if n.target != nil {
		return n.target.MultiArch
	}
	return n.multi
}

// parsed holds a stanza's relationship fields.
type parsed struct {
	depends  []Alternatives // Pre-Depends first, then Depends
	field    []string       // field of each depends element
	breaks   []Relation     // Breaks then Conflicts, alternatives flattened
	bfield   []string
	provides []Relation
}

type resolver struct {
	arch    string
	cat     Catalog
	cands   map[string][]*archive.IndexPackage // by name, native and all, highest version first; filled on demand
	provBy  map[string][]*archive.IndexPackage // virtual name -> index entries providing it; filled on demand
	state   map[string]*node
	cache   map[*archive.IndexPackage]*parsed
	initBad map[string]bool // relations already unmet in the installed state
	rounds  int
	o       options
}

// Catalog is the index entries a resolver chooses among, looked up by
// name: an archive.Repo, which decodes only the entries asked for, or a
// list (ResolveIndex). Both methods return entries in the index's order
// (which decides between equal versions), the same pointer for the same
// entry every time; the resolver reads them and never changes them.
type Catalog interface {
	// Named returns the entries of package name.
	Named(name string) []*archive.IndexPackage
	// Providing returns the entries whose Provides may name virtual: a
	// superset is fine, the resolver parses each.
	Providing(virtual string) []*archive.IndexPackage
}

// listCatalog is a Catalog over a list, indexed up front.
type listCatalog struct {
	byName, byProvides map[string][]*archive.IndexPackage
}

func newListCatalog(index []*archive.IndexPackage, arch string) *listCatalog {
	c := &listCatalog{byName: make(map[string][]*archive.IndexPackage, len(index)), byProvides: map[string][]*archive.IndexPackage{}}
	for _, p := range index {
		c.byName[p.Package] = append(c.byName[p.Package], p)
		if p.Provides == "" {
			continue
		}
		if rels, err := ParseRelations(p.Provides, arch); err == nil {
			for _, alts := range rels {
				for _, v := range alts {
					if l := c.byProvides[v.Name]; len(l) == 0 || l[len(l)-1] != p {
						c.byProvides[v.Name] = append(l, p)
					}
				}
			}
		}
	}
	return c
}

func (c *listCatalog) Named(name string) []*archive.IndexPackage { return c.byName[name] }
func (c *listCatalog) Providing(virtual string) []*archive.IndexPackage {
	return c.byProvides[virtual]
}

// ResolveIndex is Resolve over index entries shared with the caller (an
// archive.Repo's Index): they are read, never changed.
func ResolveIndex(arch string, installed []inventory.Package, index []*archive.IndexPackage, want []string, opts ...Option) (*Resolution, error) {
	return ResolveCatalog(arch, installed, newListCatalog(index, arch), want, opts...)
}

// ResolveCatalog is Resolve over the entries of cat, of which it looks
// only at those its packages, their dependencies and the virtual names
// they need lead to.
func ResolveCatalog(arch string, installed []inventory.Package, cat Catalog, want []string, opts ...Option) (*Resolution, error) {
	o := options{maxRounds: 10000}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	r := &resolver{arch: arch, cat: cat, cands: map[string][]*archive.IndexPackage{}, provBy: map[string][]*archive.IndexPackage{},
		state: map[string]*node{}, cache: map[*archive.IndexPackage]*parsed{}, initBad: map[string]bool{}, o: o}
	for i := range installed {
		ip := &installed[i]
		if (ip.Ecosystem != "" && ip.Ecosystem != version.EcosystemDeb) || (ip.Arch != arch && ip.Arch != "all") {
			continue
		}
		if _, dup := r.state[ip.Name]; dup {
			continue
		}
		n := &node{name: ip.Name, inst: ip}
		for _, p := range r.candsOf(ip.Name) {
			if n.multi == "" {
				n.multi = p.MultiArch
			}
			if vcmp(p.Version, ip.Version) == 0 {
				n.stanza, n.multi = p, p.MultiArch
				break
			}
		}
		r.state[ip.Name] = n
	}
	// Relations unmet before any change are not the resolver's to fix.
	if err := r.scan(true); err != nil {
		return nil, err
	}
	for _, w := range slices.Sorted(slices.Values(want)) {
		list := r.candsOf(w)
		if len(list) == 0 {
			return nil, &ResolveError{Chain: []string{"wanted " + w}, Detail: "not in the index for " + arch, Err: ErrUnsatisfiable}
		}
		best := list[0]
		n := r.state[w]
		switch {
		case n == nil:
			r.state[w] = &node{name: w, target: best, reason: "requested"}
		case n.target != nil:
		case vcmp(best.Version, n.inst.Version) > 0:
			n.target, n.reason = best, "requested"
		}
	}
	if err := r.scan(false); err != nil {
		return nil, err
	}
	res := &Resolution{}
	for _, name := range slices.Sorted(maps.Keys(r.state)) {
		n := r.state[name]
		if n.target == nil {
			continue
		}
		s := Step{Package: name, To: n.target.Version, Reason: n.reason, Suite: n.target.Suite, Candidate: *n.target}
		if n.inst != nil {
			s.From = n.inst.Version
		}
		res.Steps = append(res.Steps, s)
	}
	return res, nil
}

// usable reports whether the resolver considers entry p at all: of the
// image's architecture (or "all"), with a valid version.
func (r *resolver) usable(p *archive.IndexPackage) bool {
	return (p.Architecture == r.arch || p.Architecture == "all") && (version.Deb{}).Valid(p.Version)
}

// candsOf returns the usable entries of package name, highest version
// first (of equal versions, the index's order), looked up once.
func (r *resolver) candsOf(name string) []*archive.IndexPackage {
	if list, ok := r.cands[name]; ok {
		return list
	}
	var list []*archive.IndexPackage
	for _, p := range r.cat.Named(name) {
		if r.usable(p) {
			list = append(list, p)
		}
	}
	slices.SortStableFunc(list, func(a, b *archive.IndexPackage) int { return -vcmp(a.Version, b.Version) })
	r.cands[name] = list
	return list
}

// provsOf returns the usable entries whose Provides names virtual, in
// the index's order, once per time their Provides names it, looked up
// once. Only Provides is parsed here; a malformed field is reported when
// the package is used.
func (r *resolver) provsOf(virtual string) []*archive.IndexPackage {
	if list, ok := r.provBy[virtual]; ok {
		return list
	}
	var list []*archive.IndexPackage
	for _, p := range r.cat.Providing(virtual) {
		if !r.usable(p) || p.Provides == "" {
			continue
		}
		rels, err := ParseRelations(p.Provides, r.arch)
		if err != nil {
			continue
		}
		for _, alts := range rels {
			for _, v := range alts {
				if v.Name == virtual {
					list = append(list, p)
				}
			}
		}
	}
	r.provBy[virtual] = list
	return list
}

// vcmp compares Debian versions; invalid ones sort lowest.
func vcmp(a, b string) int {
	c, err := version.Deb{}.Compare(a, b)
	if err != nil {
		return cmp.Compare(a, b)
	}
	return c
}

// verSat reports whether version have satisfies r's constraint.
func verSat(have string, r Relation) bool {
	if r.Op == "" {
		return true
	}
	c, err := version.Deb{}.Compare(have, r.Version)
	if err != nil {
		return false
	}
	switch r.Op {
	case "<<":
		return c < 0
	case "<=":
		return c <= 0
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}

// archSat is dpkg's archsatisfied for a single-architecture system: a
// package of Multi-Arch multi satisfies r (breaks: a Breaks or Conflicts).
func (r *resolver) archSat(multi string, rel Relation, breaks bool) bool {
	switch {
	case multi == "foreign", rel.ArchQual == "":
		return true
	case rel.ArchQual == "any":
		return multi == "allowed" || breaks
	}
	return rel.ArchQual == r.arch || rel.ArchQual == "native"
}

// parse returns p's relationship fields, parsed once.
func (r *resolver) parse(p *archive.IndexPackage) (*parsed, error) {
	if pr, ok := r.cache[p]; ok {
		return pr, nil
	}
	pr := &parsed{}
	for _, f := range []struct {
		name, val string
	}{{"Pre-Depends", p.PreDepends}, {"Depends", p.Depends}, {"Breaks", p.Breaks}, {"Conflicts", p.Conflicts}, {"Provides", p.Provides}} {
		if f.val == "" {
			continue
		}
		rels, err := ParseRelations(f.val, r.arch)
		if err != nil {
			return nil, &RelationError{Package: p.Package + " " + p.Version, Field: f.name, Value: f.val, Err: err}
		}
		for _, alts := range rels {
			switch f.name {
			case "Pre-Depends", "Depends":
				pr.depends = append(pr.depends, alts)
				pr.field = append(pr.field, f.name)
			case "Provides":
				pr.provides = append(pr.provides, alts...)
			default:
				for _, a := range alts {
					pr.breaks = append(pr.breaks, a)
					pr.bfield = append(pr.bfield, f.name)
				}
			}
		}
	}
	r.cache[p] = pr
	return pr, nil
}

// provides reports whether stanza p (nil: none) provides rel's name in a
// way that satisfies it: an unversioned relation any Provides, a
// versioned one only a versioned Provides in range.
func (r *resolver) provides(p *archive.IndexPackage, multi string, rel Relation, breaks bool) bool {
	if p == nil {
		return false
	}
	pr, err := r.parse(p)
	if err != nil {
		return false
	}
	for _, v := range pr.provides {
		if v.Name != rel.Name || !r.archSat(multi, rel, breaks) {
			continue
		}
		if rel.Op == "" || (v.Op == "=" && verSat(v.Version, rel)) {
			return true
		}
	}
	return false
}

// satisfied reports whether the current state meets rel.
func (r *resolver) satisfied(rel Relation) bool {
	if n := r.state[rel.Name]; n != nil && r.archSat(n.multiArch(), rel, false) && verSat(n.version(), rel) {
		return true
	}
	for _, name := range r.providers(rel.Name) {
		n := r.state[name]
		if r.provides(n.cur(), n.multiArch(), rel, false) {
			return true
		}
	}
	return false
}

// providers lists the state's packages whose index entries (any version)
// provide virtual, sorted.
func (r *resolver) providers(virtual string) []string {
	var out []string
	for _, p := range r.provsOf(virtual) {
		if n := r.state[p.Package]; n != nil && !slices.Contains(out, p.Package) {
			out = append(out, p.Package)
		}
	}
	slices.Sort(out)
	return out
}

// breaks reports whether rel (a Breaks or Conflicts of package self)
// matches node n.
func (r *resolver) breaks(self string, rel Relation, n *node) bool {
	if n.name == self {
		return false
	}
	if n.name == rel.Name && r.archSat(n.multiArch(), rel, true) && verSat(n.version(), rel) {
		return true
	}
	return rel.Name != n.name && r.provides(n.cur(), n.multiArch(), rel, true)
}

// scan checks every relation of the state. With record set (the installed
// state) it records the unmet ones; otherwise it fixes the first unmet one
// and starts over, until none is left.
func (r *resolver) scan(record bool) error {
	for {
		changed, err := r.scanOnce(record)
		if err != nil || !changed {
			return err
		}
		if r.rounds++; r.rounds > r.o.maxRounds {
			return &ResolveError{Chain: []string{"resolver"}, Detail: fmt.Sprintf("more than %d changes", r.o.maxRounds), Err: ErrUnsatisfiable}
		}
	}
}

func (r *resolver) scanOnce(record bool) (bool, error) {
	names := slices.Sorted(maps.Keys(r.state))
	for _, name := range names {
		n := r.state[name]
		st := n.cur()
		if st == nil {
			continue
		}
		pr, err := r.parse(st)
		if err != nil {
			if record {
				continue
			}
			return false, &ResolveError{Chain: r.chain(n), Detail: "reading its relationships", Err: err}
		}
		for i, alts := range pr.depends {
			key := fmt.Sprintf("D\x00%s\x00%d", name, i)
			if slices.ContainsFunc(alts, r.satisfied) || (!record && n.target == nil && r.initBad[key]) {
				continue
			}
			if record {
				r.initBad[key] = true
				continue
			}
			if n.target != nil {
				return true, r.satisfy(n, pr.field[i], alts)
			}
			// An upgrade broke a package that stays: upgrade it too.
			cause := ""
			for _, a := range alts {
				if d := r.state[a.Name]; d != nil && d.target != nil {
					cause = a.Name
					break
				}
			}
			detail := fmt.Sprintf("%s %s %s: %s", name, n.version(), pr.field[i], alts)
			if err := r.upgradeStaying(n, cause, detail, ErrUnsatisfiable, nil); err != nil {
				return false, err
			}
			return true, nil
		}
		for i, rel := range pr.breaks {
			for _, oname := range names {
				o := r.state[oname]
				if !r.breaks(name, rel, o) {
					continue
				}
				key := fmt.Sprintf("B\x00%s\x00%d\x00%s", name, i, oname)
				if record {
					r.initBad[key] = true
					continue
				}
				if r.initBad[key] && n.target == nil && o.target == nil {
					continue
				}
				detail := fmt.Sprintf("%s %s %s: %s, and %s %s is in the result", name, n.version(), pr.bfield[i], rel, oname, o.version())
				switch {
				case o.target == nil:
					return true, r.upgradeStaying(o, name, detail, ErrConflict, func(p *archive.IndexPackage) bool {
						return !r.breaks(name, rel, &node{name: oname, target: p})
					})
				case n.target == nil:
					return true, r.upgradeStaying(n, oname, detail, ErrConflict, nil)
				default:
					return false, &ResolveError{Chain: r.chain(n), Detail: detail, Err: ErrConflict}
				}
			}
		}
	}
	return false, nil
}

// upgradeStaying upgrades the installed package n, which a change of cause
// broke (detail says how), to its highest candidate accepted by ok (nil:
// any newer one). Without one it fails with kind (ErrUnsatisfiable or
// ErrConflict).
func (r *resolver) upgradeStaying(n *node, cause, detail string, kind error, ok func(*archive.IndexPackage) bool) error {
	for _, p := range r.candsOf(n.name) {
		if n.inst != nil && vcmp(p.Version, n.inst.Version) <= 0 {
			break
		}
		if ok == nil || ok(p) {
			n.target, n.reason, n.by, n.rel = p, "breaks fix for "+cause, cause, detail
			return nil
		}
	}
	chain := []string{"keeping " + n.name + " " + n.version()}
	if c := r.state[cause]; c != nil {
		chain = append(r.chain(c), chain...)
	}
	return &ResolveError{Chain: chain, Detail: detail + "; no candidate of " + n.name + " fixes it", Err: kind}
}

// satisfy meets the unmet element alts of field of the changed package n:
// by upgrading an installed package, else by adding a new one.
func (r *resolver) satisfy(n *node, field string, alts Alternatives) error {
	pick := func(d *node, p *archive.IndexPackage, rel Relation) error {
		reason := "dependency of " + n.name
		if d == nil {
			d = &node{name: p.Package}
			r.state[p.Package] = d
		}
		d.target, d.reason, d.by, d.rel = p, reason, n.name, rel.String()
		return nil
	}
	// Upgrades of installed packages first, then new packages.
	for _, upgrade := range []bool{true, false} {
		for _, rel := range alts {
			d := r.state[rel.Name]
			if (d != nil) == upgrade && (d == nil || d.target == nil) {
				for _, p := range r.candsOf(rel.Name) {
					if d != nil && vcmp(p.Version, d.inst.Version) <= 0 {
						break
					}
					if r.archSat(p.MultiArch, rel, false) && verSat(p.Version, rel) {
						return pick(d, p, rel)
					}
				}
			}
			// Providers of a virtual package, by name, highest version.
			provs := slices.Clone(r.provsOf(rel.Name))
			slices.SortStableFunc(provs, func(a, b *archive.IndexPackage) int {
				return cmp.Or(cmp.Compare(a.Package, b.Package), -vcmp(a.Version, b.Version))
			})
			for _, p := range provs {
				d := r.state[p.Package]
				if (d != nil) != upgrade || (d != nil && (d.target != nil || vcmp(p.Version, d.inst.Version) <= 0)) {
					continue
				}
				if r.provides(p, p.MultiArch, rel, false) {
					return pick(d, p, rel)
				}
			}
		}
	}
	chain := append(r.chain(n), "needs "+alts.String())
	return &ResolveError{Chain: chain, Detail: field + " of " + n.name + " " + n.version() + ": none available", Err: ErrUnsatisfiable}
}

// chain describes how n came into the plan, from the requested package.
func (r *resolver) chain(n *node) []string {
	var out []string
	seen := map[string]bool{}
	for n != nil && !seen[n.name] {
		seen[n.name] = true
		switch {
		case n.reason == "requested":
			out = append(out, "wanted "+n.name)
			n = nil
		case strings.HasPrefix(n.reason, "breaks fix"):
			out = append(out, "upgrades "+n.name+" ("+n.rel+")")
			n = r.state[n.by]
		case n.by != "":
			out = append(out, "needs "+n.rel)
			n = r.state[n.by]
		default:
			out = append(out, n.name+" "+n.version())
			n = nil
		}
	}
	slices.Reverse(out)
	return out
}
