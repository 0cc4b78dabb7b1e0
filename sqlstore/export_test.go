package sqlstore

// GrantsQuery is exposed to the tests of its query plan.
const GrantsQuery = grantsQuery
