package store

import (
	"context"
	"fmt"
	"strings"
)

// ImageQuery selects a page of images for ImagePage.
type ImageQuery struct {
	Scope RepositoryScope
	// State keeps one verdict state ("" any); RepositoryContains those
	// whose repository contains it ("" any).
	State              string
	RepositoryContains string
	Offset, Limit      int
}

// ImagePage is one page of images, sorted by repository, most recently
// updated first, then digest.
type ImagePage struct {
	Images []Image
	// Total is how many images match; ByState counts the images of the
	// scope by state, before State and RepositoryContains.
	Total   int
	ByState map[string]int
}

// MaxImagePage bounds ImageQuery.Limit.
const MaxImagePage = 1000

// Images returns a page of the images of q.Scope.
func (s *SQL) Images(ctx context.Context, q ImageQuery) (*ImagePage, error) {
	if q.Limit < 1 || q.Limit > MaxImagePage || q.Offset < 0 {
		return nil, fmt.Errorf("store: images page: limit %d, offset %d: want a limit of 1 to %d", q.Limit, q.Offset, MaxImagePage)
	}
	scope, args := scopeWhere(q.Scope)
	out := &ImagePage{ByState: map[string]int{}}
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM images WHERE 1 = 1`+scope+` GROUP BY state`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: count images: %w", err)
	}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: count images: %w", err)
		}
		out.ByState[st] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: count images: %w", err)
	}
	where := ` WHERE 1 = 1` + scope
	if q.State != "" {
		where += ` AND state = ?`
		args = append(args, q.State)
	}
	if q.RepositoryContains != "" {
		where += ` AND repository LIKE ? ESCAPE '\'`
		args = append(args, "%"+strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q.RepositoryContains)+"%")
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM images`+where, args...).Scan(&out.Total); err != nil {
		return nil, fmt.Errorf("store: count images: %w", err)
	}
	rows, err = s.db.QueryContext(ctx, `SELECT `+imageColumns+` FROM images`+where+` ORDER BY repository, updated_at DESC, digest LIMIT ? OFFSET ?`,
		append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, fmt.Errorf("store: images page: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			return nil, err
		}
		out.Images = append(out.Images, *im)
	}
	return out, rows.Err()
}
