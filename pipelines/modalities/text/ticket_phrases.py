"""Phrase banks of the ticket simulator (pipelines/modalities/text/simulator.py).

Template syntax: ``[a|b|c]`` picks one alternative (an empty one drops the phrase) and
``{slot}`` draws a filler from SLOTS or a generated value (amount, date, ...). Many small
alternations rather than many fixed sentences: distinct tickets of one intent then rarely
look like near-duplicates, so the near-duplicate rule is measured on the rows we inject.

Confusability is deliberate: intents that real agents also mix up (billing/refund,
card_lost/fraud_report, account_access/technical_issue, complaint/anything) share
ambiguous templates and context sentences, so a bag-of-words model cannot be perfect.
"""

from __future__ import annotations

# Share of each intent; the last two are rare on purpose (per-class augmentation targets).
INTENT_SHARES: dict[str, float] = {
    "billing": 0.17,
    "card_lost": 0.12,
    "fraud_report": 0.12,
    "refund": 0.14,
    "technical_issue": 0.15,
    "account_access": 0.13,
    "complaint": 0.12,
    "address_change": 0.03,
    "card_activation": 0.02,
}

OPENERS = [
    "",
    "",
    "Hi,",
    "Hello,",
    "Hello team,",
    "Hi there,",
    "Good morning,",
    "Good afternoon,",
    "Dear support,",
    "Hey,",
    "To whom it may concern,",
]

CLOSERS = [
    "",
    "",
    "Thanks.",
    "Thank you.",
    "Thanks in advance.",
    "Please help.",
    "Please get back to me [soon|asap|today].",
    "Regards, {name}.",
    "Best, {name}",
    "Kind regards, {name}",
    "Cheers.",
    "Appreciate your help.",
]

# Sentences any intent may carry: they put card/app/account words into every class.
CONTEXT = [
    "I have been a customer for [years|a long time|over {years} years].",
    "I used my card at {merchant} [last week|{when}|recently].",
    "I [use|mostly use] the [mobile app|app|website] for [everything|my banking].",
    "My account is [a joint account|a business account|my main account].",
    "I [already|] called [yesterday|last week|twice] but nobody [could help|called back].",
    "This is my [second|third] message about this.",
    "I am [travelling|abroad|on holiday] [right now|at the moment|this week].",
    "I [need|would like] this [sorted|resolved|fixed] [quickly|as soon as possible|today].",
    "My card ends in {last4}.",
    "[My|The] [order|reference|case] number is {order}.",
    "I [spoke to|chatted with] {name} [on the phone|in the chat|at the branch] {when}.",
    "[It happened|This started|It began] {when} [around|at about] {clock}.",
    "I [live|am based] in {city} [if that matters|by the way|].",
    "The amount [was|is] {amount} [in total|altogether|].",
    "The [transaction|payment] [was|is] [still pending|showing as completed].",
]

INTENT_TEMPLATES: dict[str, list[str]] = {
    "billing": [
        "I was [charged|billed] {amount} [twice|two times] for [the same|one] {purchase} at "
        "{merchant}.",
        "Why [is there|do I see] a {fee} of {amount} on my [statement|account|bill]?",
        "My [monthly|latest] statement shows {amount} [but|while] I [expected|should pay] "
        "{amount2}.",
        "[Can you explain|Please explain|What is] the {fee} [charged|applied] {when}?",
        "I [think|believe] the [interest|fee|charge] on my [credit card|account] is "
        "[wrong|incorrect|miscalculated] this month.",
        "The [annual|monthly|overdraft] fee of {amount} [was taken|was deducted|appeared] "
        "[although|even though] [I cancelled|my plan is free|I was told it was waived].",
        "[My|The] direct debit to {merchant} [went out|was collected] [twice|early|late] {when}.",
        "I [was|got] charged in [dollars|euros|pounds] instead of [local currency|my currency] "
        "at {merchant}.",
    ],
    "card_lost": [
        "I [lost|misplaced|can't find] my [debit|credit|] card {when}[.|, please block it.]",
        "My [wallet|bag|purse] [was stolen|got stolen|went missing] {place} with my card in it.",
        "[Please|Can you] [block|freeze|cancel] my card, I [left|dropped|lost] it {place}.",
        "I [need|would like] a [replacement|new] card because mine [is lost|was stolen|"
        "disappeared].",
        "The ATM at {merchant} [kept|swallowed|retained] my card {when}.",
        "[Someone|A thief] [took|stole] my [phone and card|card] {place}, [what now|please "
        "help|what do I do]?",
        "How [long|many days] [does it take|until] [a|the] replacement card [arrives|gets "
        "here]? I lost mine {when}.",
    ],
    "fraud_report": [
        "There [is|are] [a|several|two] [transaction|payment|charge][s|] I [did not|didn't] "
        "make at {merchant}.",
        "[Someone|A stranger] [used|is using] my card [online|abroad|in {city}] without my "
        "[permission|knowledge].",
        "I [got|received] a [text|call|email] asking for my PIN and [now|then] {amount} "
        "[vanished|was taken|disappeared].",
        "[Unauthorised|Unauthorized|Suspicious|Fraudulent] [payment|transaction] of {amount} "
        "to {merchant} {when}.",
        "I [think|believe|suspect] my [card|account|details] [has|have] been [hacked|cloned|"
        "compromised].",
        "[Please|Can you] [investigate|dispute|look into] a [scam|fraudulent] payment of {amount}.",
        "My card [is|was] [still] in my wallet but [it was used|someone paid] at {merchant} "
        "in {city}.",
    ],
    "refund": [
        "I [returned|sent back] {purchase_a} to {merchant} {when} but [have not|haven't] "
        "[got|received] my refund.",
        "[When|How soon] will the refund of {amount} from {merchant} [arrive|show up|reach "
        "my account]?",
        "{merchant} [said|confirmed] they [refunded|issued a refund of] {amount} [but|and] "
        "[it is|it's] not [there|on my account].",
        "[I want|I'd like|Please give me] [my money back|a refund] for {purchase_a} [that|"
        "which] never [arrived|came].",
        "[My|The] order from {merchant} was [cancelled|canceled], [where is|I still wait for] "
        "the refund?",
        "[Can you|Please] [chase|track] a refund [that is overdue|that is missing|I was promised] "
        "[from|for] {merchant}?",
        "The [flight|hotel|concert] was cancelled and the refund of {amount} [is|has been] "
        "[pending|stuck] for weeks.",
    ],
    "technical_issue": [
        "The [app|mobile app] [crashes|freezes|closes] [when I open|whenever I open|on] the "
        "{feature} on my {device}.",
        "I [get|keep getting|see] {error} [on|when I open] the {feature}.",
        "The [website|app] [is|has been] [down|very slow|not loading] [since|from] {when}.",
        "[Notifications|Push notifications|Alerts] [stopped|are not] [working|arriving] on "
        "my {device}.",
        "[I cannot|I can't|Unable to] [download|export] my statement, [it shows|I get] {error}.",
        "[The|My] {feature} [shows|displays] [a blank page|nothing|wrong numbers] after the "
        "[update|latest update].",
        "[Payments|Transfers] [fail|keep failing] with {error}, reference {ref16}.",
        "The [QR code|card scanner|camera upload] [does not|doesn't] work on my {device}.",
    ],
    "account_access": [
        "I [forgot|can't remember] my [password|PIN|passcode] and [can't|cannot] [log|sign] in.",
        "My account [is|got|has been] [locked|blocked|suspended] after [three|too many] "
        "[failed|wrong] [attempts|logins].",
        "I [do not|don't] [get|receive] the [verification|security|one-time] code by [SMS|"
        "text|email].",
        "[How do I|How can I|Please help me] reset my [password|login|online banking password]?",
        "[I changed my phone|My number changed] and now [two-factor|2FA|the login check] "
        "[fails|won't let me in].",
        "[The|My] [username|customer number] is not [recognised|recognized|accepted] when I "
        "[log|sign] in.",
        "I [was|got] [logged out|kicked out] and [my|the] [fingerprint|face] login no longer "
        "works.",
    ],
    "complaint": [
        "I am [very|really|extremely] [unhappy|disappointed|frustrated] with [your|the] "
        "[service|support|bank].",
        "[This|It] is [unacceptable|ridiculous|a disgrace], I [waited|have waited|was on "
        "hold] {hours} [hours|days] [for|to reach] an agent.",
        "[Your|The] [staff|agent|branch] in {city} was [rude|unhelpful|dismissive] to me {when}.",
        "I want to [make|file|raise] a [formal|] complaint about [the way|how] my [case|"
        "request] was handled.",
        "[Nobody|No one] [answers|replies to] my [emails|messages|calls], [this|it] is "
        "[terrible|awful|poor] service.",
        "[I am|I'm] [thinking about|considering] [closing my account|leaving|switching "
        "banks] because of [this|the service].",
        "[This stupid app|This app] [keeps wasting|has wasted] my time and [nobody|no one] cares.",
    ],
    "address_change": [
        "I [moved|have moved|am moving] to {city} and [need|want] to [update|change] my "
        "[address|postal address].",
        "[Please|Can you] [update|change] [the|my] address on my account to {street}, {city}.",
        "How do I change my [home|billing|mailing] address [online|in the app]?",
        "[My|The] [statements|letters] still go to my old address, I [moved|relocated] to {city}.",
    ],
    "card_activation": [
        "My new card [arrived|came] [today|{when}] but I [cannot|can't] activate it.",
        "How do I [activate|set up|turn on] [the|my] [new|replacement] card [in the app|"
        "online|by phone]?",
        "[The|My] [card|new card] activation [fails|doesn't work|says invalid code] [in the "
        "app|on the website].",
        "[I received|I got] [the|a] [new|replacement] card, do I need to activate it before "
        "[use|paying]?",
    ],
}

# Templates shared by two intents: the same words, either label (the Bayes error floor).
AMBIGUOUS: dict[tuple[str, str], list[str]] = {
    ("billing", "refund"): [
        "I [was|got] charged {amount} by {merchant} and I want [this|it] [sorted|fixed|reversed].",
        "[There is|I see] a [wrong|strange] charge of {amount} from {merchant} {when}.",
        "Please [return|give back] the {amount} [you|the bank] took for the {fee}.",
    ],
    ("card_lost", "fraud_report"): [
        "My card [details|number] [may have|might have] been [stolen|taken], [please|can "
        "you] [block|freeze] it.",
        "[I can't find my card|My card is missing] and [I see|there is] a payment at {merchant}.",
        "[Please|Can you] cancel my card [right away|now|immediately], [something is wrong|I "
        "am worried].",
    ],
    ("technical_issue", "account_access"): [
        "[I can't|I cannot] [log in|sign in] [to the app|on my {device}], it shows {error}.",
        "The login [page|screen] [keeps|is] [loading|spinning|freezing] on my {device}.",
        "[The app|Online banking] [won't|will not] let me [in|access my account] since the update.",
    ],
    ("complaint", "billing"): [
        "[I am|I'm] [annoyed|upset|unhappy] about the {fee} [you|the bank] [charged|keep "
        "charging] me.",
        "{amount} in fees [for|on] a [basic|free] account is [outrageous|too much].",
    ],
    ("card_activation", "card_lost"): [
        "[My|The] replacement card [arrived|came] but [it does not work|I can't use it] "
        "[yet|in shops|at the ATM].",
    ],
    ("address_change", "account_access"): [
        "I [need|want] to update my [details|personal details|phone number and address] but "
        "the [app|website] [won't let me|keeps failing].",
    ],
    ("complaint", "technical_issue"): [
        "[Your|The] app is [useless|a mess|broken] [again|every week], [fix it|sort it out].",
    ],
}

# How often a ticket's body comes from an ambiguous template (if its intent has any).
AMBIGUOUS_SHARE = 0.25

# fmt: off
SLOTS: dict[str, list[str]] = {
    "merchant": [
        "Amazon", "Tesco", "Lidl", "Uber", "Netflix", "Spotify", "Shell", "IKEA", "Zara",
        "Apple", "Booking.com", "Ryanair", "eBay", "Starbucks", "McDonald's", "Costa Coffee",
        "Walmart", "Target", "Aldi", "H&M", "Decathlon", "Deliveroo", "Airbnb", "Steam",
        "PayPal", "Best Buy", "Currys", "Boots", "easyJet", "Etsy", "Sainsbury's", "Argos",
        "Vodafone", "Shein", "Nike", "Expedia", "Trainline", "Just Eat", "Primark", "Asos",
    ],
    "purchase": [
        "order", "subscription", "purchase", "ticket", "booking", "delivery", "payment",
        "membership", "meal", "top-up",
    ],
    "purchase_a": [
        "a jacket", "the shoes", "a phone case", "my order", "a laptop", "two shirts",
        "the headphones", "a coffee machine", "the parcel", "a gift card", "the tickets",
        "a desk chair",
    ],
    "fee": [
        "fee", "service fee", "late fee", "foreign transaction fee", "overdraft fee",
        "ATM fee", "maintenance charge", "card fee", "transfer fee",
    ],
    "place": [
        "at the airport", "on the train", "in a taxi", "at the gym", "at a restaurant",
        "on the bus", "at the station", "at a concert", "in the supermarket", "at work",
        "at the beach", "in a bar",
    ],
    "device": [
        "iPhone 13", "iPhone 15", "Samsung Galaxy S22", "Pixel 7", "iPad", "laptop",
        "Android phone", "Huawei P30", "OnePlus 9", "work computer", "MacBook", "tablet",
    ],
    "feature": [
        "transfers page", "statement download", "card settings", "login screen",
        "payments tab", "savings section", "budget view", "home screen", "direct debits page",
        "contacts list",
    ],
    "city": [
        "London", "Manchester", "Dublin", "Berlin", "Madrid", "Paris", "Rome", "Lisbon",
        "New York", "Chicago", "Toronto", "Sydney", "Leeds", "Bristol", "Glasgow",
        "Amsterdam",
    ],
    "street": [
        "12 High Street", "4 Station Road", "27 Church Lane", "8 Park Avenue",
        "101 Mill Road", "3 Queen Street", "55 Victoria Road", "19 Green Lane",
    ],
    "name": [
        "Anna", "Tom", "Priya", "James", "Sofia", "Mohammed", "Emma", "Lucas", "Olivia",
        "Daniel", "Chloe", "Wei", "Fatima", "Jack", "Maria", "Sam",
    ],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "month": ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"],
}

# Sentences in other languages (lang, intent, text): real phrasing, long enough for an
# n-gram detector, so the language rule is exercised the way a real inbox would.
FOREIGN: list[tuple[str, str, str]] = [
    ("de", "card_lost", "Ich habe gestern meine Karte verloren, bitte sperren Sie sie sofort."),
    ("de", "billing", "Warum wurde mir diese Gebühr zweimal berechnet? Das verstehe ich nicht."),
    ("de", "account_access", "Ich kann mich seit heute Morgen nicht mehr in mein Konto "
     "einloggen."),
    ("de", "refund", "Der Händler hat mir die Rückerstattung bestätigt, aber das Geld ist "
     "noch nicht da."),
    ("de", "technical_issue", "Die App stürzt jedes Mal ab, wenn ich eine Überweisung machen "
     "will."),
    ("fr", "card_lost", "J'ai perdu ma carte bancaire dans le métro, pouvez-vous la bloquer "
     "s'il vous plaît ?"),
    ("fr", "fraud_report", "Il y a un paiement que je n'ai jamais fait sur mon compte, "
     "c'est une fraude."),
    ("fr", "complaint", "Je suis très mécontent du service, personne ne répond à mes "
     "messages depuis une semaine."),
    ("fr", "billing", "Pourquoi ces frais apparaissent-ils sur mon relevé ce mois-ci ?"),
    ("fr", "account_access", "Je n'arrive plus à me connecter à mon compte avec mon mot de "
     "passe."),
    ("es", "refund", "Devolví el pedido hace dos semanas y todavía no he recibido el "
     "reembolso."),
    ("es", "card_lost", "Me robaron la cartera con la tarjeta dentro, necesito bloquearla "
     "ahora mismo."),
    ("es", "technical_issue", "La aplicación no funciona desde la última actualización y no "
     "puedo pagar."),
    ("es", "fraud_report", "Alguien ha usado mi tarjeta en una tienda que no conozco, por "
     "favor ayúdenme."),
    ("es", "complaint", "Estoy muy decepcionado con la atención al cliente de este banco."),
    ("it", "billing", "Mi avete addebitato due volte la stessa commissione questo mese, "
     "perché?"),
    ("it", "account_access", "Non riesco ad accedere al mio conto, il codice di verifica non "
     "arriva mai."),
    ("it", "card_lost", "Ho perso la mia carta di credito ieri sera, potete bloccarla per "
     "favore?"),
    ("it", "refund", "Ho restituito la merce al negozio ma non ho ancora ricevuto il "
     "rimborso."),
    ("it", "complaint", "Sono molto deluso dal vostro servizio clienti, nessuno mi "
     "risponde."),
]
# fmt: on

FOREIGN_OPENERS: dict[str, list[str]] = {
    "de": ["", "Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,"],
    "fr": ["", "Bonjour,", "Bonsoir,", "Madame, Monsieur,"],
    "es": ["", "Hola,", "Buenos días,", "Buenas tardes,"],
    "it": ["", "Ciao,", "Buongiorno,", "Salve,"],
}

FOREIGN_CLOSERS: dict[str, list[str]] = {
    "de": ["", "Danke.", "Vielen Dank im Voraus.", "Mit freundlichen Grüßen."],
    "fr": ["", "Merci.", "Merci d'avance.", "Cordialement."],
    "es": ["", "Gracias.", "Muchas gracias de antemano.", "Saludos cordiales."],
    "it": ["", "Grazie.", "Grazie in anticipo.", "Cordiali saluti."],
}

# Each insult line carries at least two words of the cleaning rules' abusive-word list.
INSULTS = [
    "You are all useless, stupid idiots.",
    "Absolute morons, fix it now, damn it.",
    "What a bunch of clowns and idiots.",
    "This is bullshit, you stupid idiots.",
    "Stupid morons, every single one of you.",
    "Fuck this bank and its idiots.",
    "Pathetic clowns, you are complete morons.",
    "Screw you, you incompetent bastards, damn it.",
    "Your agents are brainless idiots and liars.",
    "Shit service from stupid people.",
]

SHORT_TEXTS = ["help", "hi", "card??", "refund", "urgent", "???", "ok", "hello", "pls", "lost"]

# fmt: off
# Words a near-duplicate swaps in (a customer re-sending a ticket with a few edits).
NEAR_DUP_SWAPS = [
    "really", "please", "again", "now", "today", "urgently", "actually", "still", "just",
    "honestly",
]

EMAIL_USERS = ["anna.smith", "tom_b", "priya92", "j.doe", "sofia.r", "mo.ali", "emma+bank",
               "lucas.m", "olivia_k", "dan.w"]
EMAIL_DOMAINS = ["gmail.com", "yahoo.co.uk", "outlook.com", "hotmail.com", "icloud.com",
                 "proton.me", "example.org", "mail.de"]
# fmt: on
