// Package fakenames holds the word lists synthetic people are made of, for
// the simulator and for honeytokens alike: a honey customer planted into a
// simulated marketplace must have exactly the shapes and lengths of its
// customers' PII. Every email domain and town is reserved for fiction or
// documentation, so nothing generated can reach a real person.
package fakenames

var FirstNames = []string{
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

var LastNames = []string{
	"Abbot", "Alder", "Ashby", "Baker", "Barlow", "Bell", "Berg", "Blake", "Bloom", "Brook",
	"Carver", "Castillo", "Chandler", "Cole", "Costa", "Crane", "Dale", "Dean", "Dunn", "Ellis",
	"Engel", "Falk", "Fischer", "Ford", "Frost", "Garcia", "Grant", "Gray", "Hale", "Hart",
	"Holm", "Hughes", "Ibsen", "Ito", "Jansen", "Keller", "Kim", "Klein", "Lange", "Larsen",
	"Lee", "Lind", "Lopez", "Lund", "Marsh", "Meyer", "Moreau", "Nagy", "Nash", "Novak",
	"Olsen", "Ortiz", "Park", "Patel", "Pike", "Quinn", "Reed", "Reyes", "Rossi", "Ruiz",
	"Sato", "Schmidt", "Shaw", "Silva", "Stone", "Strand", "Tanaka", "Torres", "Vance", "Varga",
	"Vogel", "Wade", "Walsh", "Weber", "West", "Wolf", "Wong", "Wright", "Young", "Zeller",
}

var EmailDomains = []string{"example.com", "example.net", "example.org", "mail.test", "inbox.test"}

var Streets = []string{
	"Maple", "Oak", "Elm", "Cedar", "Pine", "Birch", "Willow", "Main", "High", "Church",
	"Mill", "Park", "Lake", "Hill", "River", "Station", "Sample", "Example", "Orchard", "Meadow",
}

var StreetKinds = []string{"Street", "Avenue", "Lane", "Road", "Way", "Close"}

var Towns = []string{
	"Springfield", "Shelbyville", "Ogdenville", "Riverdale", "Sunnydale", "Pawnee", "Eagleton",
	"Stars Hollow", "Hill Valley", "Twin Peaks", "Cabot Cove", "Castle Rock", "Greendale",
	"Hawkins", "Quahog", "Bedrock", "Smallville", "Metropolis", "Gotham", "Storybrooke",
}
