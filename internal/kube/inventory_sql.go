package kube

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/database"
)

// Component is the inventory's database name (DATA/kube/kube.db on
// SQLite; tables kube_* in the shared PostgreSQL database).
const Component = "kube"

// Migrations are the inventory's schema steps. A pod's containers are rows
// of their own so that "which pods run digest D" is an index lookup. On
// PostgreSQL the names compare byte by byte (COLLATE "C", SQLite's
// default), so both engines list pods in the same order.
var Migrations = []database.Migration{{
	Version: 1, Name: "running pods and the digests of their containers",
	SQLite: `
CREATE TABLE kube_pods (
	cluster       TEXT NOT NULL,
	namespace     TEXT NOT NULL,
	name          TEXT NOT NULL,
	uid           TEXT NOT NULL DEFAULT '',
	node          TEXT NOT NULL DEFAULT '',
	phase         TEXT NOT NULL DEFAULT '',
	workload_kind TEXT NOT NULL DEFAULT '',
	workload_name TEXT NOT NULL DEFAULT '',
	observed_at   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (cluster, namespace, name)
);
CREATE TABLE kube_containers (
	cluster     TEXT NOT NULL,
	namespace   TEXT NOT NULL,
	pod         TEXT NOT NULL,
	seq         INTEGER NOT NULL,
	kind        TEXT NOT NULL,
	name        TEXT NOT NULL,
	image       TEXT NOT NULL,
	host        TEXT NOT NULL DEFAULT '',
	repository  TEXT NOT NULL DEFAULT '',
	digest      TEXT NOT NULL DEFAULT '',
	digest_from TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (cluster, namespace, pod, seq),
	FOREIGN KEY (cluster, namespace, pod) REFERENCES kube_pods (cluster, namespace, name) ON DELETE CASCADE
);
CREATE INDEX kube_containers_digest ON kube_containers (digest);`,
	Postgres: `
CREATE TABLE kube_pods (
	cluster       TEXT COLLATE "C" NOT NULL,
	namespace     TEXT COLLATE "C" NOT NULL,
	name          TEXT COLLATE "C" NOT NULL,
	uid           TEXT NOT NULL DEFAULT '',
	node          TEXT NOT NULL DEFAULT '',
	phase         TEXT NOT NULL DEFAULT '',
	workload_kind TEXT NOT NULL DEFAULT '',
	workload_name TEXT NOT NULL DEFAULT '',
	observed_at   TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (cluster, namespace, name)
);
CREATE TABLE kube_containers (
	cluster     TEXT COLLATE "C" NOT NULL,
	namespace   TEXT COLLATE "C" NOT NULL,
	pod         TEXT COLLATE "C" NOT NULL,
	seq         BIGINT NOT NULL,
	kind        TEXT NOT NULL,
	name        TEXT NOT NULL,
	image       TEXT NOT NULL,
	host        TEXT NOT NULL DEFAULT '',
	repository  TEXT NOT NULL DEFAULT '',
	digest      TEXT COLLATE "C" NOT NULL DEFAULT '',
	digest_from TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (cluster, namespace, pod, seq),
	FOREIGN KEY (cluster, namespace, pod) REFERENCES kube_pods (cluster, namespace, name) ON DELETE CASCADE
);
CREATE INDEX kube_containers_digest ON kube_containers (digest);`,
}, {
	Version: 2, Name: "the vulnerability IDs of the stored scans of running digests",
	SQLite:   scanIndexSchema(`TEXT`),
	Postgres: scanIndexSchema(`TEXT COLLATE "C"`),
}}

// SQLInventory is the InventoryStore on a database opened by
// internal/database: a SQLite file, or PostgreSQL shared by replicas. Every
// write takes the cluster's named lock, so that replicas watching the same
// cluster never interleave a resync with a pod's update.
type SQLInventory struct{ db *database.DB }

var _ InventoryStore = (*SQLInventory)(nil)

// OpenInventory opens the inventory in the "kube" database of o, migrating
// its schema.
func OpenInventory(ctx context.Context, o *database.Opener) (*SQLInventory, error) {
	db, err := o.Open(ctx, Component)
	if err != nil {
		return nil, fmt.Errorf("kube inventory: %w", err)
	}
	s, err := NewSQLInventory(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// NewSQLInventory migrates the inventory's schema in db and returns the
// store, which closes db with Close.
func NewSQLInventory(ctx context.Context, db *database.DB) (*SQLInventory, error) {
	if _, err := db.Migrate(ctx, Component, Migrations); err != nil {
		return nil, fmt.Errorf("kube inventory: %w", err)
	}
	return &SQLInventory{db: db}, nil
}

// Close closes the database.
func (s *SQLInventory) Close() error { return s.db.Close() }

func clusterLock(cluster string) string { return "kube-inventory:" + cluster }

// PutPod implements InventoryStore.
func (s *SQLInventory) PutPod(ctx context.Context, p PodRecord) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return s.update(ctx, p.Cluster, func(tx *database.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM kube_pods WHERE cluster = ? AND namespace = ? AND name = ?`, p.Cluster, p.Namespace, p.Name); err != nil {
			return err
		}
		return insertPods(ctx, tx, []PodRecord{p})
	})
}

// DeletePod implements InventoryStore.
func (s *SQLInventory) DeletePod(ctx context.Context, cluster, namespace, name string) error {
	return s.update(ctx, cluster, func(tx *database.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM kube_pods WHERE cluster = ? AND namespace = ? AND name = ?`, cluster, namespace, name); err != nil {
			return fmt.Errorf("delete pod %s/%s: %w", namespace, name, err)
		}
		return nil
	})
}

// ReplaceCluster implements InventoryStore.
func (s *SQLInventory) ReplaceCluster(ctx context.Context, cluster string, pods []PodRecord) error {
	seen := make(map[[2]string]bool, len(pods))
	for _, p := range pods {
		if err := p.Validate(); err != nil {
			return err
		}
		if p.Cluster != cluster {
			return fmt.Errorf("%w: pod %s/%s of cluster %q in a resync of %q", ErrInvalidRecord, p.Namespace, p.Name, p.Cluster, cluster)
		}
		k := [2]string{p.Namespace, p.Name}
		if seen[k] {
			return fmt.Errorf("%w: pod %s/%s twice in one resync", ErrInvalidRecord, p.Namespace, p.Name)
		}
		seen[k] = true
	}
	return s.update(ctx, cluster, func(tx *database.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM kube_pods WHERE cluster = ?`, cluster); err != nil {
			return err
		}
		return insertPods(ctx, tx, pods)
	})
}

// update runs fn in a write transaction holding the cluster's lock.
func (s *SQLInventory) update(ctx context.Context, cluster string, fn func(tx *database.Tx) error) error {
	err := s.db.Update(ctx, func(tx *database.Tx) error {
		if err := tx.Lock(ctx, clusterLock(cluster)); err != nil {
			return err
		}
		return fn(tx)
	})
	if err != nil {
		return fmt.Errorf("kube inventory: %w", err)
	}
	return nil
}

// insertBatch is how many rows one DELETE names; insertParams bounds the
// parameters of one INSERT (well under both engines' limits: SQLite's
// 32,766, PostgreSQL's 65,535), so that a statement writes 700 to 1,000
// rows.
const (
	insertBatch  = 200
	insertParams = 8000
)

// insertPods writes pods and their containers, many rows an INSERT (a
// resync of 10,000 pods is a few hundred statements, not 30,000 round
// trips to PostgreSQL).
func insertPods(ctx context.Context, tx *database.Tx, pods []PodRecord) error {
	const podCols = `INSERT INTO kube_pods (cluster, namespace, name, uid, node, phase, workload_kind, workload_name, observed_at) VALUES `
	const ctrCols = `INSERT INTO kube_containers (cluster, namespace, pod, seq, kind, name, image, host, repository, digest, digest_from) VALUES `
	var podRows, ctrRows [][]any
	for _, p := range pods {
		observed := ""
		if !p.ObservedAt.IsZero() {
			observed = p.ObservedAt.UTC().Format(time.RFC3339Nano)
		}
		podRows = append(podRows, []any{p.Cluster, p.Namespace, p.Name, p.UID, p.Node, p.Phase, p.Workload.Kind, p.Workload.Name, observed})
		for i, c := range p.Containers {
			ctrRows = append(ctrRows, []any{p.Cluster, p.Namespace, p.Name, i, c.Kind, c.Name, c.Image, c.Host, c.Repository, c.Digest, c.DigestFrom})
		}
	}
	if err := insertRows(ctx, tx, podCols, podRows); err != nil {
		return fmt.Errorf("pods: %w", err)
	}
	if err := insertRows(ctx, tx, ctrCols, ctrRows); err != nil {
		return fmt.Errorf("containers: %w", err)
	}
	return nil
}

func insertRows(ctx context.Context, tx *database.Tx, head string, rows [][]any) error {
	for len(rows) > 0 {
		n := min(len(rows), insertParams/len(rows[0]))
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, n*len(rows[0]))
		for i, r := range rows[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(" + strings.TrimSuffix(strings.Repeat("?, ", len(r)), ", ") + ")")
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// Pods implements InventoryStore.
func (s *SQLInventory) Pods(ctx context.Context, f PodFilter) ([]PodRecord, error) {
	const cols = `SELECT p.cluster, p.namespace, p.name, p.uid, p.node, p.phase, p.workload_kind, p.workload_name, p.observed_at,
		c.kind, c.name, c.image, c.host, c.repository, c.digest, c.digest_from`
	const join = ` LEFT JOIN kube_containers c ON c.cluster = p.cluster AND c.namespace = p.namespace AND c.pod = p.name
		WHERE (? = '' OR p.cluster = ?) AND (? = '' OR p.namespace = ?)`
	q := cols + ` FROM kube_pods p` + join
	args := []any{f.Cluster, f.Cluster, f.Namespace, f.Namespace}
	if f.Digests != nil {
		list, err := json.Marshal(f.Digests)
		if err != nil {
			return nil, err
		}
		// The digests travel as one JSON array, whatever their number.
		// The pods are found from the containers' digest index first,
		// then read: the plan does not depend on the engine's statistics
		// (PostgreSQL, once it had analysed 10,000 pods, chose to probe
		// every pod, 30 times slower).
		each := `SELECT value FROM json_each(?)`
		if s.db.Driver() == database.Postgres {
			each = `SELECT json_array_elements_text(CAST(? AS json))`
		}
		q = `WITH m AS (SELECT DISTINCT d.cluster, d.namespace, d.pod FROM kube_containers d WHERE d.digest IN (` + each + `)) ` +
			cols + ` FROM m JOIN kube_pods p ON p.cluster = m.cluster AND p.namespace = m.namespace AND p.name = m.pod` + join
		args = append([]any{string(list)}, args...)
	}
	q += ` ORDER BY p.cluster, p.namespace, p.name, c.seq`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("kube inventory: list pods: %w", err)
	}
	defer rows.Close()
	var out []PodRecord
	for rows.Next() {
		var p PodRecord
		var observed string
		var kind, name, image, host, repo, digest, from sql.NullString
		if err := rows.Scan(&p.Cluster, &p.Namespace, &p.Name, &p.UID, &p.Node, &p.Phase, &p.Workload.Kind, &p.Workload.Name, &observed,
			&kind, &name, &image, &host, &repo, &digest, &from); err != nil {
			return nil, fmt.Errorf("kube inventory: list pods: %w", err)
		}
		if n := len(out); n == 0 || out[n-1].Cluster != p.Cluster || out[n-1].Namespace != p.Namespace || out[n-1].Name != p.Name {
			if observed != "" {
				p.ObservedAt, _ = time.Parse(time.RFC3339Nano, observed)
			}
			out = append(out, p)
		}
		if kind.Valid {
			last := &out[len(out)-1]
			last.Containers = append(last.Containers, RunningContainer{Kind: kind.String, Name: name.String, Image: image.String,
				Host: host.String, Repository: repo.String, Digest: digest.String, DigestFrom: from.String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kube inventory: list pods: %w", err)
	}
	return out, nil
}

// Digests implements InventoryStore.
func (s *SQLInventory) Digests(ctx context.Context) ([]DigestUse, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT digest, COUNT(*) FROM
		(SELECT DISTINCT digest, cluster, namespace, pod FROM kube_containers WHERE digest != '') u
		GROUP BY digest ORDER BY digest`)
	if err != nil {
		return nil, fmt.Errorf("kube inventory: list digests: %w", err)
	}
	defer rows.Close()
	var out []DigestUse
	for rows.Next() {
		var d DigestUse
		if err := rows.Scan(&d.Digest, &d.Pods); err != nil {
			return nil, fmt.Errorf("kube inventory: list digests: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kube inventory: list digests: %w", err)
	}
	return out, nil
}
