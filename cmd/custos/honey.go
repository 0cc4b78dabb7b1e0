package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"github.com/custos/custos/honey"
	"github.com/custos/custos/sqlstore"
	"github.com/custos/custos/vault"
)

// HoneyKeyFile seeds honeytoken planting: with the same key, planting
// again finds the same honey customers instead of adding new ones.
const HoneyKeyFile = "honey.key"

// honeyPlant plants honeytoken customers into the store. It prints counts
// only: which customers are honey stays in the vault's metadata.
func (m *Main) honeyPlant(ctx context.Context) error {
	c := &m.Config
	db, err := m.openDB(ctx)
	if err != nil {
		return err
	}
	m.DB = db
	keys, err := vault.LoadKeyring(c.Data, c.MasterKey)
	if err != nil {
		return err
	}
	v := vault.New(keys)
	seed, err := vault.LoadOrCreateSecret(filepath.Join(c.Data, HoneyKeyFile))
	if err != nil {
		return err
	}
	store := sqlstore.NewEntityStore(db)
	ids, orders, err := store.SellerOrderCounts(ctx)
	if err != nil {
		return err
	}
	cfg := honey.Config{MinOrders: c.HoneyMinOrders, PerSeller: c.HoneyPerSeller, Extra: c.HoneyExtra, Taken: store.Exists}
	for i, id := range ids {
		cfg.Sellers = append(cfg.Sellers, honey.SellerSize{ID: id, Orders: orders[i]})
	}
	const sample = 2000
	if cfg.CustomerIDs, cfg.Regions, err = store.SampleIDs(ctx, "customer", sample); err != nil {
		return err
	}
	if cfg.OrderIDs, _, err = store.SampleIDs(ctx, "order", sample); err != nil {
		return err
	}
	if cfg.ReviewIDs, _, err = store.SampleIDs(ctx, "review", sample); err != nil {
		return err
	}
	var key [32]byte
	copy(key[:], seed)
	res, err := honey.Plant(ctx, cfg, store, v.Seal, rand.NewChaCha8(key))
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "planted %d honey customers (%d were there already), %d orders, %d reviews; %d sellers covered\n",
		res.Customers, res.Existing, res.Orders, res.Reviews, res.Sellers)
	return nil
}
