package sim

// Name lists for synthetic people, sellers and addresses. They are small on
// purpose: the generated PII only has to look plausible to the code that
// handles it, and every email domain, phone range and town below is
// reserved for fiction or documentation, so nothing generated can reach a
// real person.

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

// Reserved for documentation and testing by RFC 2606 and RFC 6761.
var emailDomains = []string{"example.com", "example.net", "example.org", "mail.test", "inbox.test"}

var streets = []string{
	"Maple", "Oak", "Elm", "Cedar", "Pine", "Birch", "Willow", "Main", "High", "Church",
	"Mill", "Park", "Lake", "Hill", "River", "Station", "Sample", "Example", "Orchard", "Meadow",
}

var streetKinds = []string{"Street", "Avenue", "Lane", "Road", "Way", "Close"}

// Fictional towns.
var towns = []string{
	"Springfield", "Shelbyville", "Ogdenville", "Riverdale", "Sunnydale", "Pawnee", "Eagleton",
	"Stars Hollow", "Hill Valley", "Twin Peaks", "Cabot Cove", "Castle Rock", "Greendale",
	"Hawkins", "Quahog", "Bedrock", "Smallville", "Metropolis", "Gotham", "Storybrooke",
}

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
