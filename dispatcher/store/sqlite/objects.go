package sqlite

import (
	"context"
	"fmt"

	"github.com/pando-wms/pando/dispatcher/store"
)

// PutObject stores o, replacing the object of the same kind and name.
func (db *DB) PutObject(ctx context.Context, o store.Object) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO objects (kind, name, value, updated) VALUES (?,?,?,?)
		ON CONFLICT (kind, name) DO UPDATE SET value = excluded.value, updated = excluded.updated`,
		o.Kind, o.Name, o.Value, unixNano(o.Updated))
	if err != nil {
		return fmt.Errorf("sqlite: put %s %q: %w", o.Kind, o.Name, err)
	}
	return db.Sync(ctx)
}

// DeleteObject removes an object.
func (db *DB) DeleteObject(ctx context.Context, kind, name string) error {
	res, err := db.w.ExecContext(ctx, "DELETE FROM objects WHERE kind = ? AND name = ?", kind, name)
	if err != nil {
		return fmt.Errorf("sqlite: delete %s %q: %w", kind, name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("sqlite: delete %s %q: %w", kind, name, store.ErrNotFound)
	}
	return db.Sync(ctx)
}

// Objects returns the objects of a kind by name.
func (db *DB) Objects(ctx context.Context, kind string) ([]store.Object, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT kind, name, value, updated FROM objects WHERE kind = ? ORDER BY name", kind)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s objects: %w", kind, err)
	}
	defer rows.Close()
	var out []store.Object
	for rows.Next() {
		var o store.Object
		var updated int64
		if err := rows.Scan(&o.Kind, &o.Name, &o.Value, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: %s objects: %w", kind, err)
		}
		o.Updated = fromUnixNano(updated)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s objects: %w", kind, err)
	}
	return out, nil
}
