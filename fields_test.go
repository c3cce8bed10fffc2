package pleooauth

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFieldRank(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path      string
		rank, idx int
	}{
		{"client_name", 0, -1},
		{"redirect_uris[12]", 8, 12},
		{"redirect_uris[x]", 8, -1},
		{"unknown", len(fields), -1},
		{"", len(fields), -1},
		{"[", len(fields), -1},
	} {
		rank, idx := fieldRank(tt.path)
		assert.Equal(t, tt.rank, rank, tt.path)
		assert.Equal(t, tt.idx, idx, tt.path)
	}
}
