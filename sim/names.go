package sim

import "github.com/custos/custos/internal/fakenames"

// Name lists for synthetic people, sellers and addresses. They are small on
// purpose: the generated PII only has to look plausible to the code that
// handles it, and every email domain, phone range and town below is
// reserved for fiction or documentation, so nothing generated can reach a
// real person.

var firstNames = fakenames.FirstNames

var lastNames = fakenames.LastNames

// Reserved for documentation and testing by RFC 2606 and RFC 6761.
var emailDomains = fakenames.EmailDomains

var streets = fakenames.Streets

var streetKinds = fakenames.StreetKinds

// Fictional towns.
var towns = fakenames.Towns

var sellerWords1 = []string{
	"Bright", "Northern", "Golden", "Blue", "Silver", "Quiet", "Swift", "Green", "Red", "Happy",
	"Clever", "Urban", "Little", "Grand", "Honest", "Lucky", "Modern", "Royal", "Sunny", "Wild",
}

var sellerWords2 = []string{
	"Harbor", "Fox", "Pine", "River", "Cloud", "Stone", "Owl", "Meadow", "Anchor", "Comet",
	"Forge", "Garden", "Lantern", "Maple", "Pebble", "Summit", "Tide", "Willow", "Beacon", "Bridge",
}

var sellerSuffixes = []string{"Goods", "Trading", "Store", "Supply", "Co", "Outlet", "Market", "Shop"}

// category is a seller category; sellers in one category compete.
type category struct {
	name     string
	weight   float64 // share of sellers
	avgCents float64 // typical order value
}

var categories = []category{
	{"electronics", 8, 12000}, {"phones", 4, 30000}, {"computers", 3, 60000},
	{"books", 6, 2200}, {"toys", 5, 3500}, {"fashion", 9, 4500}, {"shoes", 4, 7000},
	{"beauty", 5, 2500}, {"home", 7, 5000}, {"kitchen", 5, 4000}, {"garden", 4, 4500},
	{"sports", 5, 5500}, {"outdoor", 3, 8000}, {"pets", 4, 3000}, {"grocery", 4, 1800},
	{"health", 3, 2600}, {"baby", 3, 3800}, {"office", 3, 2800}, {"automotive", 3, 6500},
	{"tools", 3, 7500}, {"music", 2, 9000}, {"games", 3, 5000}, {"jewelry", 2, 9500},
	{"crafts", 2, 2000},
}
