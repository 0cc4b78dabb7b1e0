package sqlstore

import "github.com/custos/custos"

// GrantsQuery is exposed to the tests of its query plan.
const GrantsQuery = grantsQuery

// ChangeEncoder checks b as Ingest does and returns the step Ingest then
// adds for the change feed, for its benchmark.
func ChangeEncoder(b *custos.Batch) (func() []byte, error) {
	sets, err := encodeBatch(b)
	if err != nil {
		return nil, err
	}
	return func() []byte { return encodeChange(sets) }, nil
}
