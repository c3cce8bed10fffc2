// Package migrations reads the SQL migrations a store embeds: files named
// NNN_what.sql, applied in the order of their numbers.
package migrations

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// Migration is one SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// load returns the migrations in dir of fsys, ordered by version.
func load(fsys fs.FS, dir string) ([]Migration, error) {
	names, err := fs.Glob(fsys, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, name := range names {
		base := strings.TrimPrefix(name, dir+"/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: the name must start with its version number, as in 001_name.sql", name)
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: base, SQL: string(data)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	return out, nil
}

// pending returns the migrations after version current.
func pending(all []Migration, current int) []Migration {
	i := 0
	for i < len(all) && all[i].Version <= current {
		i++
	}
	return all[i:]
}

// Tx is what Apply needs of the transaction it migrates in.
type Tx interface {
	Exec(ctx context.Context, query string, args ...any) error
	QueryInt(ctx context.Context, query string) (int, error)
}

// Apply creates the table pleooauth_schema_migrations with createTable if
// it is missing, and runs each migration in dir of fsys after the highest
// version recorded there, recording each with the statement and arguments
// record returns. The caller begins tx, serialising migrators as its
// database allows, and commits it.
func Apply(ctx context.Context, tx Tx, fsys fs.FS, dir, createTable string, record func(version int) (string, []any)) error {
	if err := tx.Exec(ctx, createTable); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	current, err := tx.QueryInt(ctx, `SELECT COALESCE(MAX(version), 0) FROM pleooauth_schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	all, err := load(fsys, dir)
	if err != nil {
		return err
	}
	for _, m := range pending(all, current) {
		if err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		query, args := record(m.Version)
		if err := tx.Exec(ctx, query, args...); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}
