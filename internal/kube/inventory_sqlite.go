package kube

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// InventoryPath is where the SQLite inventory lives under a data directory.
func InventoryPath(dataDir string) string { return filepath.Join(dataDir, "kube", "inventory.db") }

const inventorySchema = `
CREATE TABLE IF NOT EXISTS kube_pods (
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
CREATE TABLE IF NOT EXISTS kube_containers (
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
CREATE INDEX IF NOT EXISTS kube_containers_digest ON kube_containers (digest);
`

// SQLiteInventory is the InventoryStore on a SQLite file.
type SQLiteInventory struct{ db *sql.DB }

var _ InventoryStore = (*SQLiteInventory)(nil)

// OpenSQLiteInventory opens (creating) the inventory at path. It is a copy
// of cluster state the watcher rebuilds at every start, so it syncs to
// disk less eagerly than the gate's store (synchronous NORMAL).
func OpenSQLiteInventory(path string) (*SQLiteInventory, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("kube inventory: %w", err)
	}
	q := url.Values{"_pragma": []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"}, "_txlock": []string{"immediate"}}
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("kube inventory %s: %w", path, err)
	}
	if _, err := db.Exec(inventorySchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("kube inventory %s: create schema: %w", path, err)
	}
	return &SQLiteInventory{db: db}, nil
}

// Close closes the database.
func (s *SQLiteInventory) Close() error { return s.db.Close() }

// PutPod implements InventoryStore.
func (s *SQLiteInventory) PutPod(ctx context.Context, p PodRecord) error {
	if err := p.Validate(); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM kube_pods WHERE cluster = ? AND namespace = ? AND name = ?`, p.Cluster, p.Namespace, p.Name); err != nil {
			return err
		}
		return insertPods(ctx, tx, []PodRecord{p})
	})
}

// DeletePod implements InventoryStore.
func (s *SQLiteInventory) DeletePod(ctx context.Context, cluster, namespace, name string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM kube_pods WHERE cluster = ? AND namespace = ? AND name = ?`, cluster, namespace, name); err != nil {
		return fmt.Errorf("kube inventory: delete pod %s/%s: %w", namespace, name, err)
	}
	return nil
}

// ReplaceCluster implements InventoryStore.
func (s *SQLiteInventory) ReplaceCluster(ctx context.Context, cluster string, pods []PodRecord) error {
	for _, p := range pods {
		if err := p.Validate(); err != nil {
			return err
		}
		if p.Cluster != cluster {
			return fmt.Errorf("%w: pod %s/%s of cluster %q in a resync of %q", ErrInvalidRecord, p.Namespace, p.Name, p.Cluster, cluster)
		}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM kube_pods WHERE cluster = ?`, cluster); err != nil {
			return err
		}
		return insertPods(ctx, tx, pods)
	})
}

func (s *SQLiteInventory) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("kube inventory: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return fmt.Errorf("kube inventory: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("kube inventory: %w", err)
	}
	return nil
}

func insertPods(ctx context.Context, tx *sql.Tx, pods []PodRecord) error {
	ps, err := tx.PrepareContext(ctx, `INSERT INTO kube_pods (cluster, namespace, name, uid, node, phase, workload_kind, workload_name, observed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cluster, namespace, name) DO NOTHING`)
	if err != nil {
		return err
	}
	defer ps.Close()
	cs, err := tx.PrepareContext(ctx, `INSERT INTO kube_containers (cluster, namespace, pod, seq, kind, name, image, host, repository, digest, digest_from)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer cs.Close()
	for _, p := range pods {
		observed := ""
		if !p.ObservedAt.IsZero() {
			observed = p.ObservedAt.UTC().Format(time.RFC3339Nano)
		}
		res, err := ps.ExecContext(ctx, p.Cluster, p.Namespace, p.Name, p.UID, p.Node, p.Phase, p.Workload.Kind, p.Workload.Name, observed)
		if err != nil {
			return fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: pod %s/%s twice in one write", ErrInvalidRecord, p.Namespace, p.Name)
		}
		for i, c := range p.Containers {
			if _, err := cs.ExecContext(ctx, p.Cluster, p.Namespace, p.Name, i, c.Kind, c.Name, c.Image, c.Host, c.Repository, c.Digest, c.DigestFrom); err != nil {
				return fmt.Errorf("pod %s/%s container %s: %w", p.Namespace, p.Name, c.Name, err)
			}
		}
	}
	return nil
}

// Pods implements InventoryStore.
func (s *SQLiteInventory) Pods(ctx context.Context, f PodFilter) ([]PodRecord, error) {
	q := `SELECT p.cluster, p.namespace, p.name, p.uid, p.node, p.phase, p.workload_kind, p.workload_name, p.observed_at,
		c.kind, c.name, c.image, c.host, c.repository, c.digest, c.digest_from
		FROM kube_pods p LEFT JOIN kube_containers c ON c.cluster = p.cluster AND c.namespace = p.namespace AND c.pod = p.name
		WHERE (? = '' OR p.cluster = ?) AND (? = '' OR p.namespace = ?)`
	args := []any{f.Cluster, f.Cluster, f.Namespace, f.Namespace}
	if f.Digests != nil {
		list, err := json.Marshal(f.Digests)
		if err != nil {
			return nil, err
		}
		q += ` AND EXISTS (SELECT 1 FROM kube_containers d WHERE d.cluster = p.cluster AND d.namespace = p.namespace AND d.pod = p.name
			AND d.digest IN (SELECT value FROM json_each(?)))`
		args = append(args, string(list))
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
	return out, rows.Err()
}

// Digests implements InventoryStore.
func (s *SQLiteInventory) Digests(ctx context.Context) ([]DigestUse, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT digest, COUNT(*) FROM
		(SELECT DISTINCT digest, cluster, namespace, pod FROM kube_containers WHERE digest != '')
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
	return out, rows.Err()
}
