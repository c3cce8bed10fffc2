package migrations

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/010_later.sql": {Data: []byte("B")},
		"m/002_first.sql": {Data: []byte("A")},
		"m/readme.txt":    {Data: []byte("not a migration")},
	}
	all, err := load(fsys, "m")
	require.NoError(t, err)
	assert.Equal(t, []Migration{{2, "002_first.sql", "A"}, {10, "010_later.sql", "B"}}, all)
	assert.Equal(t, all[1:], pending(all, 2))
	assert.Empty(t, pending(all, 10))

	_, err = load(fstest.MapFS{"m/first.sql": {Data: []byte("A")}}, "m")
	assert.ErrorContains(t, err, "must start with its version number")
}
