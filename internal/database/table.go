package database

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Table describes a table of a component for copying an installation to
// another database: its columns, and what differs between engines.
type Table struct {
	Name    string
	Columns []string
	// Key orders the rows (the primary key).
	Key string
	// Bools are the columns that are INTEGER 0/1 on SQLite and BOOLEAN on
	// PostgreSQL.
	Bools []string
	// Identity is a PostgreSQL identity column whose sequence must follow
	// the copied values.
	Identity string
}

// copyBatch is how many rows CopyTable inserts per transaction.
const copyBatch = 500

// CopyTable copies every row of t from src to dst, in key order, and
// returns how many it copied. dst's table must exist (migrated) and hold
// none of src's keys.
func CopyTable(ctx context.Context, src, dst *DB, t Table) (int, error) {
	cols := strings.Join(t.Columns, ", ")
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(t.Columns)), ", ")
	insert := `INSERT INTO ` + t.Name + ` (` + cols + `) VALUES (` + marks + `)`
	n := 0
	var after []any
	for {
		rows, err := readRows(ctx, src, t, after, copyBatch)
		if err != nil {
			return n, err
		}
		if len(rows) == 0 {
			break
		}
		if err := dst.Update(ctx, func(tx *Tx) error {
			for _, r := range rows {
				if _, err := tx.ExecContext(ctx, insert, convert(t, r, dst.driver)...); err != nil {
					return fmt.Errorf("copying %s: %w", t.Name, err)
				}
			}
			return nil
		}); err != nil {
			return n, err
		}
		n += len(rows)
		after = []any{rows[len(rows)-1][slices.Index(t.Columns, t.Key)]}
		if len(rows) < copyBatch {
			break
		}
	}
	if t.Identity != "" && dst.driver == Postgres && n > 0 {
		if _, err := dst.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+t.Name+`', '`+t.Identity+`'), (SELECT MAX(`+t.Identity+`) FROM `+t.Name+`))`); err != nil {
			return n, fmt.Errorf("copying %s: moving its identity on: %w", t.Name, err)
		}
	}
	return n, nil
}

// readRows reads up to limit rows of t after the key value in after (all
// from the start when after is nil).
func readRows(ctx context.Context, db *DB, t Table, after []any, limit int) ([][]any, error) {
	q := `SELECT ` + strings.Join(t.Columns, ", ") + ` FROM ` + t.Name
	args := []any{}
	if after != nil {
		q += ` WHERE ` + t.Key + ` > ?`
		args = append(args, after...)
	}
	q += ` ORDER BY ` + t.Key
	if limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.Name, err)
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(t.Columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("reading %s: %w", t.Name, err)
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// convert adapts a row read from one engine to the other's column types.
func convert(t Table, row []any, to Driver) []any {
	out := slices.Clone(row)
	for i, c := range t.Columns {
		if !slices.Contains(t.Bools, c) || out[i] == nil {
			continue
		}
		b := truthy(out[i])
		if to == Postgres {
			out[i] = b
		} else if b {
			out[i] = int64(1)
		} else {
			out[i] = int64(0)
		}
	}
	return out
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case int64:
		return x != 0
	case []byte:
		return string(x) == "1" || string(x) == "t" || string(x) == "true"
	case string:
		return x == "1" || x == "t" || x == "true"
	}
	return false
}

// canonical renders a value so that the same stored value reads the same
// from either engine.
func canonical(t Table, col string, v any) string {
	if v == nil {
		return "NULL"
	}
	if slices.Contains(t.Bools, col) {
		return strconv.FormatBool(truthy(v))
	}
	switch x := v.(type) {
	case []byte:
		return "x" + hex.EncodeToString(x)
	case string:
		return "x" + hex.EncodeToString([]byte(x))
	default:
		return fmt.Sprint(x)
	}
}

// CompareTables checks that t holds the same rows, value for value, in a
// and b, and returns how many rows it compared.
func CompareTables(ctx context.Context, a, b *DB, t Table) (int, error) {
	n := 0
	var after []any
	for {
		ra, err := readRows(ctx, a, t, after, copyBatch)
		if err != nil {
			return n, err
		}
		rb, err := readRows(ctx, b, t, after, copyBatch)
		if err != nil {
			return n, err
		}
		for i := range max(len(ra), len(rb)) {
			if i >= len(ra) || i >= len(rb) {
				return n, fmt.Errorf("%s: %d rows in %s, more or fewer in %s", t.Name, n+len(ra), a, b)
			}
			for j, c := range t.Columns {
				if x, y := canonical(t, c, ra[i][j]), canonical(t, c, rb[i][j]); x != y {
					return n, fmt.Errorf("%s: row %s = %v differs in column %s", t.Name, t.Key, ra[i][slices.Index(t.Columns, t.Key)], c)
				}
			}
			n++
		}
		if len(ra) < copyBatch {
			return n, nil
		}
		after = []any{ra[len(ra)-1][slices.Index(t.Columns, t.Key)]}
	}
}

// Count returns the number of rows of a table.
func (db *DB) Count(ctx context.Context, table string) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting %s: %w", table, err)
	}
	return n, nil
}
