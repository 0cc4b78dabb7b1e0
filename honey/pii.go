package honey

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/custos/custos"
)

// The lists and formats below are those of the simulator (package sim),
// on purpose: honey customers planted into a simulated marketplace must
// have the PII lengths and shapes of its customers, or the length of the
// sealed record would tell them apart. A real deployment sets
// Config.EmailDomains to mailboxes it watches.

var firstNames = []string{
	"Ada", "Alba", "Alex", "Amara", "Amir", "Ana", "Andrei", "Anika", "Ari", "Astrid",
	"Ben", "Bianca", "Bo", "Bruno", "Carla", "Chen", "Chloe", "Dalia", "Dan", "Daria",
	"David", "Elena", "Eli", "Emil", "Emma", "Erik", "Eva", "Farah", "Felix", "Freya",
	"Gabriel", "Greta", "Hana", "Hugo", "Ida", "Ines", "Ivan", "Jade", "Jamal", "Jana",
	"Jonas", "Julia", "Kai", "Karin", "Kenji", "Lara", "Leo", "Lina", "Luca", "Maja",
	"Malik", "Maria", "Marta", "Mateo", "Mia", "Milan", "Mina", "Nadia", "Nico", "Nina",
	"Noah", "Nora", "Olga", "Omar", "Oscar", "Paula", "Pedro", "Priya", "Rafael", "Rania",
	"Ravi", "Rosa", "Ruben", "Sara", "Selma", "Sofia", "Sven", "Tara", "Theo", "Tomas",
	"Uma", "Vera", "Viktor", "Wei", "Yara", "Yusuf", "Zara", "Zoe", "Lars", "Ilse",
}

var lastNames = []string{
	"Abbot", "Alder", "Ashby", "Baker", "Barlow", "Bell", "Berg", "Blake", "Bloom", "Brook",
	"Carver", "Castillo", "Chandler", "Cole", "Costa", "Crane", "Dale", "Dean", "Dunn", "Ellis",
	"Engel", "Falk", "Fischer", "Ford", "Frost", "Garcia", "Grant", "Gray", "Hale", "Hart",
	"Holm", "Hughes", "Ibsen", "Ito", "Jansen", "Keller", "Kim", "Klein", "Lange", "Larsen",
	"Lee", "Lind", "Lopez", "Lund", "Marsh", "Meyer", "Moreau", "Nagy", "Nash", "Novak",
	"Olsen", "Ortiz", "Park", "Patel", "Pike", "Quinn", "Reed", "Reyes", "Rossi", "Ruiz",
	"Sato", "Schmidt", "Shaw", "Silva", "Stone", "Strand", "Tanaka", "Torres", "Vance", "Varga",
	"Vogel", "Wade", "Walsh", "Weber", "West", "Wolf", "Wong", "Wright", "Young", "Zeller",
}

// DefaultEmailDomains are reserved for documentation and testing (RFC 2606,
// RFC 6761): nothing sent to them reaches anyone. They match the simulator.
var DefaultEmailDomains = []string{"example.com", "example.net", "example.org", "mail.test", "inbox.test"}

var streets = []string{
	"Maple", "Oak", "Elm", "Cedar", "Pine", "Birch", "Willow", "Main", "High", "Church",
	"Mill", "Park", "Lake", "Hill", "River", "Station", "Sample", "Example", "Orchard", "Meadow",
}

var streetKinds = []string{"Street", "Avenue", "Lane", "Road", "Way", "Close"}

var towns = []string{
	"Springfield", "Shelbyville", "Ogdenville", "Riverdale", "Sunnydale", "Pawnee", "Eagleton",
	"Stars Hollow", "Hill Valley", "Twin Peaks", "Cabot Cove", "Castle Rock", "Greendale",
	"Hawkins", "Quahog", "Bedrock", "Smallville", "Metropolis", "Gotham", "Storybrooke",
}

// fakePII draws a plausible identity in region, from ranges set aside for
// fiction: NANP 555-01xx and Ofcom's 07700 900xxx.
func fakePII(r *rand.Rand, region string, domains []string) custos.PII {
	first := firstNames[r.IntN(len(firstNames))]
	last := lastNames[r.IntN(len(lastNames))]
	p := custos.PII{Name: first + " " + last}
	p.Email = fmt.Sprintf("%s.%s%d@%s", strings.ToLower(first), strings.ToLower(last), 1+r.IntN(999), domains[r.IntN(len(domains))])
	if region == "NA" || region == "LATAM" {
		p.Phone = fmt.Sprintf("+1-%03d-555-01%02d", 201+r.IntN(780), r.IntN(100))
	} else {
		p.Phone = fmt.Sprintf("+44 7700 900%03d", r.IntN(1000))
	}
	p.Address = fmt.Sprintf("%d %s %s, %s 00%03d", 1+r.IntN(250), streets[r.IntN(len(streets))],
		streetKinds[r.IntN(len(streetKinds))], towns[r.IntN(len(towns))], r.IntN(1000))
	return p
}
