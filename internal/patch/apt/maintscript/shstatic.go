package maintscript

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/drydock-project/drydock/internal/patch/apt/dpkg"
	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/version"
)

// A static reading of maintainer scripts.
//
// Many maintainer scripts act only for some of dpkg's invocations (remove,
// purge, a fresh install) and do nothing for an upgrade: their code sits in
// a `case "$1" in` branch or behind `if [ "$1" = purge ]`. scriptEffect
// reads a script with the arguments dpkg would pass and decides, without
// running it, whether the branches that would run contain anything but
// no-op statements. It understands a deliberately small shell subset:
// if/elif/else/fi with test conditions on "$1" and "$2" (=, !=, -z, -n),
// "dpkg --compare-versions" on known versions, && and || of those; case
// on "$1"/"$2" with glob patterns; function definitions (a call is an
// effect); and the statements ":", "true", "set -e/-u/-x", "exit 0",
// echo without redirection, service actions (invoke-rc.d,
// deb-systemd-invoke: no service runs in an image), "rm -f" of paths that
// do not exist, and "update-alternatives --install" of exactly what
// var/lib/dpkg/alternatives already registers. Any
// other construct, or a condition it cannot decide whose branches are not
// all no-ops, counts as an effect: the reading may say "effect" for a
// script that has none, never the reverse.

type shReader struct {
	lines []string
	i     int
	// maybe is set while reading code that may or may not run (a branch
	// of an undecided condition): an "exit" there does not end the
	// reading.
	maybe bool
	args  []string // $1, $2, ...
	env   *shEnv
}

// shEnv is what conditions may ask of the image, as it stands after the
// unpack: file tests and user/group lookups. Nil answers "unknown".
type shEnv struct {
	// stat reports the mode of an absolute path (following symlinks) and
	// whether it exists.
	stat func(p string) (fs.FileMode, bool)
	// lstat is stat without following a final symlink.
	lstat func(p string) (fs.FileMode, bool)
	// getent reports whether database ("passwd", "group") has key.
	getent func(db, key string) (bool, bool)
	// vars are environment variables dpkg sets (DPKG_ROOT...).
	vars map[string]string
	// readFile reads an absolute path of the patched image.
	readFile func(p string) ([]byte, bool)
}

// effectError says what would run.
type effectError struct{ what string }

func (e *effectError) Error() string { return e.what }

var errExit = fmt.Errorf("exit 0")

// errMaybeExit is an exit in code that may not run: the rest of its block
// is skipped, and reading goes on after the block.
var errMaybeExit = fmt.Errorf("exit 0 (maybe)")

// scriptEffect returns nil when script, run with args, provably does
// nothing; otherwise an error naming the first statement that would (or
// might) have an effect.
func scriptEffect(script string, args []string, env *shEnv) error {
	if env == nil {
		env = &shEnv{}
	}
	r := &shReader{lines: shLines(script), args: args, env: env}
	err := r.block(nil, true)
	if err == errExit {
		return nil
	}
	if err == nil && r.i < len(r.lines) {
		return &effectError{fmt.Sprintf("unexpected %q", truncate(r.lines[r.i], 60))}
	}
	return err
}

// shLines splits a script into logical lines: comments and blank lines
// dropped, continuation lines joined, and "a; then" / "a; do" split.
func shLines(script string) []string {
	var out []string
	var cur strings.Builder
	for raw := range strings.SplitSeq(script, "\n") {
		l := strings.TrimSpace(raw)
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		l = strings.TrimSpace(cur.String())
		cur.Reset()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		for {
			head, rest, ok := strings.Cut(l, "; then")
			if !ok {
				break
			}
			out = append(out, strings.TrimSpace(head), "then")
			l = strings.TrimSpace(rest)
		}
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// block reads statements until one of the terminators (a line equal to
// one of them, or for case branches starting with ";;" / matching a
// pattern). When run is false the statements are parsed but not judged.
func (r *shReader) block(terms []string, run bool) error {
	for r.i < len(r.lines) {
		l := r.lines[r.i]
		for _, t := range terms {
			if l == t || strings.HasPrefix(l, t+" ") || (t == ";;" && strings.HasPrefix(l, ";;")) {
				return nil
			}
		}
		if err := r.stmt(run); err != nil {
			if err != errMaybeExit {
				return err
			}
			// Skip the rest of this block without judging it.
			return r.block(terms, false)
		}
	}
	return nil
}

var funcDefRE = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*\(\)\s*\{?$`)

func (r *shReader) stmt(run bool) error {
	l := r.lines[r.i]
	switch {
	case strings.HasPrefix(l, "if "):
		return r.ifStmt(run)
	case strings.HasPrefix(l, "case "):
		return r.caseStmt(run)
	case funcDefRE.MatchString(l):
		// A definition runs nothing; skip to its closing brace.
		r.i++
		if !strings.HasSuffix(l, "{") {
			if r.i >= len(r.lines) || r.lines[r.i] != "{" {
				return &effectError{"unreadable function definition"}
			}
			r.i++
		}
		depth := 1
		for ; r.i < len(r.lines) && depth > 0; r.i++ {
			switch {
			case r.lines[r.i] == "}":
				depth--
			case strings.HasSuffix(r.lines[r.i], "{"):
				depth++
			}
		}
		if depth != 0 {
			return &effectError{"unterminated function definition"}
		}
		return nil
	}
	r.i++
	if !run {
		return nil
	}
	return r.simple(strings.TrimSuffix(l, ";"))
}

// simple judges one simple statement (or an "a || b" list of them).
func (r *shReader) simple(l string) error {
	if a, b, ok := strings.Cut(l, " || "); ok && !strings.Contains(a, "\"") {
		// b runs only if a fails; statements judged no-op here succeed.
		if err := r.simple(a); err != nil {
			return err
		}
		_ = b
		return nil
	}
	switch l {
	case ":", "true", "set -e", "set -u", "set -eu", "set -ue", "set -x", "set -ex", "set -e -u":
		return nil
	case "exit 0", "exit $?", "exit":
		if r.maybe {
			return errMaybeExit
		}
		return errExit
	}
	f := strings.Fields(l)
	switch {
	case f[0] == "echo" && !strings.ContainsAny(strings.ReplaceAll(strings.ReplaceAll(l, ">&2", ""), "\\`", ""), ">|;&`(") && !strings.Contains(l, "$("):
		return nil // output only
	case f[0] == "invoke-rc.d" || f[0] == "deb-systemd-invoke" || f[0] == "service":
		// Starting, stopping or reloading a service: no service runs while
		// an image is built, and policy-rc.d denies it in containers.
		return nil
	case f[0] == "update-alternatives" && len(f) >= 6 && f[1] == "--install":
		if err := r.alternativeRegistered(f[2:]); err != nil {
			return &effectError{fmt.Sprintf("runs %q (%v)", truncate(l, 60), err)}
		}
		return nil // re-registering what is registered
	case f[0] == "rm" && len(f) >= 3 && f[1] == "-f":
		for _, p := range f[2:] {
			v, ok := r.word(p)
			if !ok || !strings.HasPrefix(v, "/") || r.env.lstat == nil {
				return &effectError{fmt.Sprintf("runs %q", truncate(l, 60))}
			}
			if _, exists := r.env.lstat(v); exists {
				return &effectError{fmt.Sprintf("runs %q (%s exists)", truncate(l, 60), v)}
			}
		}
		return nil // removing files that do not exist
	}
	return &effectError{fmt.Sprintf("runs %q", truncate(l, 60))}
}

func (r *shReader) ifStmt(run bool) error {
	taken := false    // a branch certainly ran
	elseKnown := true // every condition so far was decided
	cond := strings.TrimPrefix(r.lines[r.i], "if ")
	for {
		r.i++
		if r.i >= len(r.lines) || r.lines[r.i] != "then" {
			return &effectError{"unreadable if statement"}
		}
		r.i++
		v, known := r.cond(cond)
		branchRun := run && !taken && (v || !known)
		saved := r.maybe
		r.maybe = r.maybe || !known
		err := r.block([]string{"elif", "else", "fi"}, branchRun)
		r.maybe = saved
		if err != nil {
			return err
		}
		if known && v {
			taken = true
		}
		elseKnown = elseKnown && known
		if r.i >= len(r.lines) {
			return &effectError{"if without fi"}
		}
		l := r.lines[r.i]
		switch {
		case l == "fi":
			r.i++
			return nil
		case l == "else":
			r.i++
			saved := r.maybe
			r.maybe = r.maybe || !elseKnown
			err := r.block([]string{"fi"}, run && !taken)
			r.maybe = saved
			if err != nil {
				return err
			}
			if r.i >= len(r.lines) {
				return &effectError{"if without fi"}
			}
			r.i++
			return nil
		default: // elif
			cond = strings.TrimPrefix(l, "elif ")
		}
	}
}

// cond evaluates a condition: (value, known).
func (r *shReader) cond(c string) (bool, bool) {
	c = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(c), ";"))
	// && and || have equal precedence and group from the left: split at
	// the last operator.
	if i := max(strings.LastIndex(c, " && "), strings.LastIndex(c, " || ")); i >= 0 {
		a, op, b := c[:i], c[i+1:i+3], c[i+4:]
		va, ka := r.cond(a)
		vb, kb := r.cond(b)
		if op == "&&" {
			if (ka && !va) || (kb && !vb) {
				return false, true
			}
			return va && vb, ka && kb
		}
		if (ka && va) || (kb && vb) {
			return true, true
		}
		return va || vb, ka && kb
	}
	if rest, ok := strings.CutPrefix(c, "! "); ok {
		v, k := r.cond(rest)
		return !v, k
	}
	var words []string
	switch {
	case strings.HasPrefix(c, "[ ") && strings.HasSuffix(c, " ]"):
		words = strings.Fields(strings.TrimSuffix(strings.TrimPrefix(c, "[ "), " ]"))
	case strings.HasPrefix(c, "test "):
		words = strings.Fields(strings.TrimPrefix(c, "test "))
	case strings.HasPrefix(c, "invoke-rc.d ") && strings.Contains(c, " status"):
		return false, true // no service is running in an image
	case strings.HasPrefix(c, "getent "):
		f := strings.Fields(strings.TrimSuffix(strings.TrimSuffix(c, " >/dev/null"), " > /dev/null"))
		if len(f) != 3 || r.env.getent == nil {
			return false, false
		}
		key, ok := r.word(f[2])
		if !ok {
			return false, false
		}
		return r.env.getent(f[1], key)
	case strings.HasPrefix(c, "dpkg --compare-versions "):
		f := strings.Fields(strings.TrimPrefix(c, "dpkg --compare-versions "))
		if len(f) == 4 && f[0] == "--" {
			f = f[1:]
		}
		if len(f) != 3 {
			return false, false
		}
		a, okA := r.word(f[0])
		b, okB := r.word(f[2])
		if !okA || !okB {
			return false, false
		}
		return compareVersionsOp(a, f[1], b)
	default:
		return false, false
	}
	if len(words) > 1 && words[0] == "!" {
		v, k := r.cond("[ " + strings.Join(words[1:], " ") + " ]")
		return !v, k
	}
	switch len(words) {
	case 2:
		v, ok := r.word(words[1])
		if !ok {
			return false, false
		}
		switch words[0] {
		case "-z":
			return v == "", true
		case "-n":
			return v != "", true
		case "-e", "-d", "-f", "-x", "-L", "-h", "-s", "-r":
			if !strings.HasPrefix(v, "/") || r.env.stat == nil {
				return false, false
			}
			st := r.env.stat
			if words[0] == "-L" || words[0] == "-h" {
				st = r.env.lstat
			}
			mode, exists := st(v)
			switch words[0] {
			case "-e", "-r":
				return exists, true
			case "-d":
				return exists && mode.IsDir(), true
			case "-f":
				return exists && mode.IsRegular(), true
			case "-x":
				return exists && mode&0o111 != 0, true
			case "-L", "-h":
				return exists && mode&fs.ModeSymlink != 0, true
			}
			return false, false // -s needs a size
		}
	case 3:
		a, okA := r.word(words[0])
		b, okB := r.word(words[2])
		if !okA || !okB {
			return false, false
		}
		switch words[1] {
		case "=", "==":
			return a == b, true
		case "!=":
			return a != b, true
		}
	}
	return false, false
}

// word expands a shell word when it is a literal or "$1".."$9" (quoted or
// not); other expansions are unknown.
func (r *shReader) word(w string) (string, bool) {
	if len(w) >= 2 && (w[0] == '"' && w[len(w)-1] == '"' || w[0] == '\'' && w[len(w)-1] == '\'') {
		inner := w[1 : len(w)-1]
		if w[0] == '\'' {
			return inner, true
		}
		w = inner
	}
	if name, ok := strings.CutPrefix(w, "$"); ok && r.env.vars != nil {
		if v, ok := r.env.vars[strings.Trim(name, "{}")]; ok {
			return v, true
		}
	}
	if len(w) == 2 && w[0] == '$' && w[1] >= '1' && w[1] <= '9' {
		n := int(w[1] - '1')
		if n < len(r.args) {
			return r.args[n], true
		}
		return "", true
	}
	if strings.ContainsAny(w, "$`*?[\\\"'") {
		return "", false
	}
	return w, true
}

var casePatternRE = regexp.MustCompile(`^\(?([^()]+)\)\s*(.*)$`)

func (r *shReader) caseStmt(run bool) error {
	f := strings.Fields(r.lines[r.i])
	if len(f) != 3 || f[2] != "in" {
		return &effectError{fmt.Sprintf("unreadable %q", truncate(r.lines[r.i], 60))}
	}
	subject, known := r.word(f[1])
	r.i++
	matched := false
	for r.i < len(r.lines) {
		l := r.lines[r.i]
		if l == "esac" {
			r.i++
			return nil
		}
		m := casePatternRE.FindStringSubmatch(l)
		if m == nil {
			return &effectError{fmt.Sprintf("unreadable case branch %q", truncate(l, 60))}
		}
		hit := false
		for _, p := range strings.Split(m[1], "|") {
			p = strings.Trim(strings.TrimSpace(p), `"'`)
			if ok, err := path.Match(p, subject); err == nil && ok {
				hit = true
			}
		}
		branchRun := run && ((known && hit && !matched) || !known)
		if known && hit {
			matched = true
		}
		saved := r.maybe
		r.maybe = r.maybe || !known
		defer func() { r.maybe = saved }()
		// Commands on the pattern line itself ("a) foo ;;").
		rest := strings.TrimSpace(m[2])
		endsHere := strings.HasSuffix(rest, ";;")
		rest = strings.TrimSpace(strings.TrimSuffix(rest, ";;"))
		if rest != "" {
			r.lines[r.i] = rest // the branch's first statement
			if err := r.stmt(branchRun); err != nil && err != errMaybeExit {
				return err
			}
		} else {
			r.i++
		}
		if endsHere {
			continue
		}
		if err := r.block([]string{";;", "esac"}, branchRun); err != nil {
			return err
		}
		if r.i < len(r.lines) && strings.HasPrefix(r.lines[r.i], ";;") {
			r.i++
		}
	}
	return &effectError{"case without esac"}
}

// compareVersionsOp evaluates dpkg --compare-versions a op b.
func compareVersionsOp(a, op, b string) (bool, bool) {
	nl := strings.HasSuffix(op, "-nl")
	op = strings.TrimSuffix(op, "-nl")
	if a == "" || b == "" {
		// dpkg: an empty version is earlier than any ("-nl": later).
		if a == b {
			return op == "eq" || op == "le" || op == "ge" || op == "=" || op == "<=" || op == ">=", true
		}
		less := a == ""
		if nl {
			less = !less
		}
		switch op {
		case "lt", "le", "<<", "<=":
			return less, true
		case "gt", "ge", ">>", ">=":
			return !less, true
		case "eq", "=":
			return false, true
		case "ne":
			return true, true
		}
		return false, false
	}
	c, err := version.Deb{}.Compare(a, b)
	if err != nil {
		return false, false // malformed
	}
	switch op {
	case "lt", "<<":
		return c < 0, true
	case "le", "<=":
		return c <= 0, true
	case "eq", "=":
		return c == 0, true
	case "ne":
		return c != 0, true
	case "ge", ">=":
		return c >= 0, true
	case "gt", ">>":
		return c > 0, true
	}
	return false, false
}

// newShEnv answers script conditions from the image with the changeset
// applied.
func newShEnv(in Input) *shEnv {
	view := layer.NewOverlay(in.FS, in.Changes)
	lstat := func(p string) (fs.FileMode, bool) {
		rel := layer.Confine(p)
		r, err := view.Resolve(rel)
		if err != nil {
			return 0, false
		}
		if e := in.Changes.Get(r); e != nil {
			switch e.Kind {
			case layer.Whiteout:
				return 0, false
			case layer.Dir:
				return fs.ModeDir | e.Mode, true
			case layer.Symlink:
				return fs.ModeSymlink | 0o777, true
			}
			return e.Mode, true
		}
		if k, _ := view.Lookup(r); k == layer.Absent {
			return 0, false
		}
		fi, err := in.FS.Lstat(r)
		if err != nil {
			return 0, false
		}
		return fi.Mode(), true
	}
	stat := func(p string) (fs.FileMode, bool) {
		for hops := 0; hops < layer.MaxSymlinkHops; hops++ {
			mode, ok := lstat(p)
			if !ok || mode&fs.ModeSymlink == 0 {
				return mode, ok
			}
			r, _ := view.Resolve(layer.Confine(p))
			target, ok := "", false
			if e := in.Changes.Get(r); e != nil && e.Kind == layer.Symlink {
				target, ok = e.Linkname, true
			} else if t, err := in.FS.ReadLink(r); err == nil {
				target, ok = t, true
			}
			if !ok {
				return 0, false
			}
			if !path.IsAbs(target) {
				target = path.Join("/", path.Dir(r), target)
			}
			p = target
		}
		return 0, false
	}
	getent := func(db, key string) (bool, bool) {
		if db != "passwd" && db != "group" {
			return false, false
		}
		data, err := dpkg.ReadOptional(in.FS, "etc/"+db)
		if err != nil {
			return false, false
		}
		if e := in.Changes.Get("etc/" + db); e != nil {
			return false, false // changed by the patch: not read here
		}
		for l := range strings.SplitSeq(string(data), "\n") {
			if name, _, _ := strings.Cut(l, ":"); name == key {
				return true, true
			}
		}
		return false, true
	}
	ov := layer.NewOverlay(in.FS, in.Changes)
	readFile := func(p string) ([]byte, bool) {
		data, err := fs.ReadFile(ov, layer.Confine(p))
		return data, err == nil
	}
	return &shEnv{stat: stat, lstat: lstat, getent: getent, readFile: readFile, vars: map[string]string{"DPKG_ROOT": ""}}
}

// alternativeRegistered checks that "update-alternatives --install LINK
// NAME PATH PRIORITY [--slave LINK NAME PATH]..." would change nothing:
// the image's var/lib/dpkg/alternatives/NAME already has that master link,
// exactly those slaves, and the choice PATH with that priority and those
// slave paths.
func (r *shReader) alternativeRegistered(args []string) error {
	var w []string
	for _, a := range args {
		v, ok := r.word(a)
		if !ok {
			return fmt.Errorf("argument %s not known", a)
		}
		w = append(w, v)
	}
	if len(w) < 4 || (len(w)-4)%4 != 0 {
		return fmt.Errorf("unexpected arguments")
	}
	link, name, choice, prio := w[0], w[1], w[2], w[3]
	slaves := map[string][2]string{} // name -> link, path
	for i := 4; i < len(w); i += 4 {
		if w[i] != "--slave" {
			return fmt.Errorf("unexpected option %s", w[i])
		}
		slaves[w[i+2]] = [2]string{w[i+1], w[i+3]}
	}
	if r.env.readFile == nil || strings.ContainsAny(name, "/") {
		return fmt.Errorf("cannot read the alternatives database")
	}
	data, ok := r.env.readFile("/var/lib/dpkg/alternatives/" + name)
	if !ok {
		return fmt.Errorf("%s is not registered", name)
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 3 || lines[1] != link {
		return fmt.Errorf("%s has another master link", name)
	}
	i := 2
	var order []string // slave names in file order
	for ; i+1 < len(lines) && lines[i] != ""; i += 2 {
		sl, ok := slaves[lines[i]]
		if !ok || sl[0] != lines[i+1] {
			return fmt.Errorf("slave %s differs", lines[i])
		}
		order = append(order, lines[i])
	}
	if len(order) != len(slaves) {
		return fmt.Errorf("slaves differ")
	}
	for i++; i < len(lines) && lines[i] != ""; {
		path, p := lines[i], ""
		if i+1 < len(lines) {
			p = lines[i+1]
		}
		paths := lines[min(i+2, len(lines)):min(i+2+len(order), len(lines))]
		if path == choice {
			if p != prio {
				return fmt.Errorf("priority %s registered, %s asked", p, prio)
			}
			for j, sn := range order {
				if j >= len(paths) || paths[j] != slaves[sn][1] {
					return fmt.Errorf("slave path of %s differs", sn)
				}
			}
			return nil
		}
		i += 2 + len(order)
	}
	return fmt.Errorf("%s is not a registered choice of %s", choice, name)
}
