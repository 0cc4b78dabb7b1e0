package detect

import (
	"log/slog"
	"sync"
	"time"

	"github.com/custos/custos"
	"github.com/custos/custos/rules"
)

// Defaults of Config. Every zero field of Config takes its default.
const (
	DefaultHalfLife         = 7 * 24 * time.Hour
	DefaultRiskMedium       = 15.0
	DefaultRiskHigh         = 40.0
	DefaultRiskCritical     = 90.0
	DefaultRefireAfter      = 24 * time.Hour
	DefaultReviewLookback   = 180 * 24 * time.Hour
	DefaultPurchaseLookback = 90 * 24 * time.Hour
	DefaultMaxEvidence      = 64
	DefaultShiftGrace       = time.Hour
	DefaultHoursHistory     = 200  // reveals before usual hours are learned
	DefaultOffHoursShare    = 0.01 // an hour (with its neighbours) this rare is off-hours
	DefaultMinSample        = 200  // strong reveals before their statistics count

	DefaultConcentrationWindow    = 14 * 24 * time.Hour
	DefaultConcentrationMinCount  = 3
	DefaultConcentrationMinBuyers = 5
	DefaultConcentrationMinShare  = 0.5
	DefaultConcentrationLift      = 3.0
	DefaultConcentrationBurst     = 2
	DefaultConcentrationBurstWin  = 2 * time.Hour
	DefaultConcentrationAlpha     = 1e-4

	DefaultFabricatedWindow    = 14 * 24 * time.Hour
	DefaultFabricatedMinCount  = 3
	DefaultFabricatedMinBuyers = 5
	DefaultFabricatedMinShare  = 0.5
	DefaultFabricatedCaseCount = 2

	DefaultCollusionWindow         = 7 * 24 * time.Hour
	DefaultCollusionMinEmployees   = 3
	DefaultCollusionMinTeams       = 2
	DefaultCollusionMinPerEmployee = 2
	DefaultCollusionMinCustomers   = 6
	DefaultCollusionLift           = 4.0

	DefaultBaselineHistoryDays = 28
	DefaultBaselineMinDays     = 5
	DefaultBaselinePeerDays    = 7
	DefaultBaselineMinPeers    = 20 // member-days in a peer group's sample
	DefaultBaselineZ           = 6.0
	DefaultBaselineMADFloor    = 1.0
	DefaultBaselineMinDelta    = 10.0
	DefaultBaselineMinShare    = 0.5 // of the day's customers

	DefaultCompetitorWindow          = 7 * 24 * time.Hour
	DefaultCompetitorMinCompetitor   = 2
	DefaultCompetitorMinOtherSellers = 4
	DefaultCompetitorMinDenied       = 3
)

// DefaultWeights are the risk weights of low, medium, high and critical
// alerts.
var DefaultWeights = [4]float64{5, 25, 60, 120}

// Config tunes the engine. The zero Config is the default one, with the
// default rules.
type Config struct {
	// Rules are the threshold rules (CEL) evaluated over each employee's
	// features; see LoadRules. Nil means DefaultRules(); an empty
	// &RuleSet{} means none.
	Rules *RuleSet

	// HalfLife is the half-life of an employee's risk score.
	HalfLife time.Duration
	// RiskMedium, RiskHigh and RiskCritical are the risk score thresholds
	// of the levels (below RiskMedium is low).
	RiskMedium, RiskHigh, RiskCritical float64
	// Weights is what one alert of each severity adds to the risk score,
	// indexed by custos.SeverityRank. Zero means DefaultWeights. With the
	// default thresholds one alert keeps its level for days, not hours:
	// high for log2(60/40)·HalfLife ≈ 4 days.
	Weights [4]float64
	// RefireAfter is how long an alert that stays true waits before it adds
	// to risk again.
	RefireAfter time.Duration
	// ReviewLookback is how far back a review makes a customer a reviewer
	// of a seller.
	ReviewLookback time.Duration
	// PurchaseLookback is how far back an order makes a customer a buyer
	// of a seller.
	PurchaseLookback time.Duration
	// MaxEvidence caps the audit indices kept on one alert.
	MaxEvidence int
	// TrustedRoles may explain reveals for a seller with a case they opened
	// themselves that names the seller (investigators do). Nil means fraud
	// and security investigators; an empty non-nil slice means none.
	TrustedRoles []custos.Role
	// ShiftGrace widens a known shift on both sides.
	ShiftGrace time.Duration
	// HoursHistory and OffHoursShare learn usual hours when no shift is
	// known: after HoursHistory reveals, an hour of day that (with its two
	// neighbours) holds less than OffHoursShare of them is off-hours.
	HoursHistory  int
	OffHoursShare float64
	// MinSample is how many strongly explained reveals (everyone's, over a
	// detector's window) the engine needs before it trusts their share of
	// a seller's negative reviewers as what case work looks like.
	MinSample int

	Concentration ConcentrationConfig
	Fabricated    FabricatedConfig
	Collusion     CollusionConfig
	Baseline      BaselineConfig
	Competitor    CompetitorConfig

	// OnRisk, if set, is called whenever an employee's risk level changes,
	// synchronously, from the goroutine that calls Observe.
	OnRisk func(custos.Risk)
	Logger *slog.Logger
}

// ConcentrationConfig tunes seller concentration: an employee asks, without
// a strong explanation, for customers most of whom left a negative review
// of one seller.
type ConcentrationConfig struct {
	Window    time.Duration
	MinCount  int     // unexplained negative reviewers of one seller
	MinBuyers int     // or unexplained buyers of one seller
	MinShare  float64 // of the employee's unexplained customers in the window
	// Lift: the share must also be Lift times the seller's share among
	// the customers the employee's own cases explain, and among all
	// customers.
	Lift float64
	// BurstCount customers within BurstWindow are enough when no case of
	// the employee links any of them (the shares are then taken among the
	// customers asked for so in the burst window).
	BurstCount  int
	BurstWindow time.Duration
	// Alpha: when the customers counted include some a case the employee
	// opened for themselves links, the count must also be this
	// improbable (binomial tail) for customers drawn like case work.
	// Fabricated cases use it too.
	Alpha float64
}

// FabricatedConfig tunes fabricated cases: reveals under cases the employee
// opened and assigned to themselves, whose customers' common factor is a
// negative review of one seller.
type FabricatedConfig struct {
	Window    time.Duration
	MinCount  int // negative reviewers of one seller
	MinBuyers int // or buyers of one seller
	MinShare  float64
	// CaseCount negative reviewers of one seller linked by one
	// self-opened case are enough on their own.
	CaseCount int
}

// CollusionConfig tunes cross-employee convergence on one seller's negative
// reviewers.
type CollusionConfig struct {
	Window         time.Duration
	MinEmployees   int // employees with at least MinPerEmployee customers
	MinTeams       int
	MinPerEmployee int
	MinCustomers   int // distinct customers over all of them
	// Lift: the customers must be Lift times what the seller's share of
	// all customers predicts from everyone's unexplained reveals.
	Lift float64
}

// BaselineConfig tunes self-baseline and peer-group anomalies on daily
// features. A day's value x is anomalous against a (median, MAD) when
// x ≥ median + max(MinDelta, Z·1.4826·max(MAD, MADFloor)).
type BaselineConfig struct {
	HistoryDays int // own active days kept
	MinDays     int // own active days needed for a self baseline
	PeerDays    int // days of peer samples kept
	MinPeers    int // member-days needed for a peer baseline
	Z           float64
	MADFloor    float64
	MinDelta    float64
	// MinShare: the day's value must also be at least this share of the
	// customers the employee asked for that day (a busy day has more of
	// everything).
	MinShare float64
}

// CompetitorConfig tunes competitor sales look-ups.
type CompetitorConfig struct {
	Window          time.Duration
	MinCompetitor   int // reads of sellers outside the portfolio in a category the employee manages
	MinOtherSellers int // distinct sellers outside the portfolio
	MinDenied       int // denied sales reads
}

func (c Config) withDefaults() Config {
	setD := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	setF := func(p *float64, d float64) {
		if *p <= 0 {
			*p = d
		}
	}
	setI := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	setD(&c.HalfLife, DefaultHalfLife)
	setF(&c.RiskMedium, DefaultRiskMedium)
	setF(&c.RiskHigh, DefaultRiskHigh)
	setF(&c.RiskCritical, DefaultRiskCritical)
	if c.Weights == ([4]float64{}) {
		c.Weights = DefaultWeights
	}
	setD(&c.RefireAfter, DefaultRefireAfter)
	setD(&c.ReviewLookback, DefaultReviewLookback)
	setD(&c.PurchaseLookback, DefaultPurchaseLookback)
	setI(&c.MaxEvidence, DefaultMaxEvidence)
	if c.TrustedRoles == nil {
		c.TrustedRoles = []custos.Role{custos.RoleFraudInvestigator, custos.RoleSecurityInvestigator}
	}
	setD(&c.ShiftGrace, DefaultShiftGrace)
	setI(&c.HoursHistory, DefaultHoursHistory)
	setF(&c.OffHoursShare, DefaultOffHoursShare)
	setI(&c.MinSample, DefaultMinSample)

	setD(&c.Concentration.Window, DefaultConcentrationWindow)
	setI(&c.Concentration.MinCount, DefaultConcentrationMinCount)
	setI(&c.Concentration.MinBuyers, DefaultConcentrationMinBuyers)
	setF(&c.Concentration.MinShare, DefaultConcentrationMinShare)
	setF(&c.Concentration.Lift, DefaultConcentrationLift)
	setI(&c.Concentration.BurstCount, DefaultConcentrationBurst)
	setD(&c.Concentration.BurstWindow, DefaultConcentrationBurstWin)
	setF(&c.Concentration.Alpha, DefaultConcentrationAlpha)

	setD(&c.Fabricated.Window, DefaultFabricatedWindow)
	setI(&c.Fabricated.MinCount, DefaultFabricatedMinCount)
	setI(&c.Fabricated.MinBuyers, DefaultFabricatedMinBuyers)
	setF(&c.Fabricated.MinShare, DefaultFabricatedMinShare)
	setI(&c.Fabricated.CaseCount, DefaultFabricatedCaseCount)

	setD(&c.Collusion.Window, DefaultCollusionWindow)
	setI(&c.Collusion.MinEmployees, DefaultCollusionMinEmployees)
	setI(&c.Collusion.MinTeams, DefaultCollusionMinTeams)
	setI(&c.Collusion.MinPerEmployee, DefaultCollusionMinPerEmployee)
	setI(&c.Collusion.MinCustomers, DefaultCollusionMinCustomers)
	setF(&c.Collusion.Lift, DefaultCollusionLift)

	setI(&c.Baseline.HistoryDays, DefaultBaselineHistoryDays)
	setI(&c.Baseline.MinDays, DefaultBaselineMinDays)
	setI(&c.Baseline.PeerDays, DefaultBaselinePeerDays)
	setI(&c.Baseline.MinPeers, DefaultBaselineMinPeers)
	setF(&c.Baseline.Z, DefaultBaselineZ)
	setF(&c.Baseline.MADFloor, DefaultBaselineMADFloor)
	setF(&c.Baseline.MinDelta, DefaultBaselineMinDelta)
	setF(&c.Baseline.MinShare, DefaultBaselineMinShare)

	setD(&c.Competitor.Window, DefaultCompetitorWindow)
	setI(&c.Competitor.MinCompetitor, DefaultCompetitorMinCompetitor)
	setI(&c.Competitor.MinOtherSellers, DefaultCompetitorMinOtherSellers)
	setI(&c.Competitor.MinDenied, DefaultCompetitorMinDenied)

	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Rules == nil {
		c.Rules = DefaultRules()
	}
	return c
}

var (
	builtinOnce  sync.Once
	builtinRules *RuleSet
)

// DefaultRules returns the rules shipped in rules/default.yaml, compiled
// once. They are embedded in the binary and checked by this package's
// tests, so a failure to compile them is a build defect: it panics.
func DefaultRules() *RuleSet {
	builtinOnce.Do(func() {
		rs, err := ParseRules(rules.Default, "default.yaml")
		if err != nil {
			panic("detect: the embedded default rules do not compile: " + err.Error())
		}
		builtinRules = rs
	})
	return builtinRules
}
