package workload

import "strings"

// commonWords is a hand-written list of frequent English and business words,
// roughly in decreasing frequency. It is extended programmatically to
// vocabSize words by derivedWords; rank in the final list drives the Zipf
// frequency.
const commonWords = `the of and to a in is that for it as was with be by on not he this are or
his from at which but have an they you were her she there been one all we their has would when if
so no will can more other its who what about time them than some only into also any could these
may then two first like our new now after very should over made such most through where well just
because how before between each those because people many much our both under same know year work
back use way even good here still think day could make part team please thanks thank meeting week
review project update report customer plan need next send attached let me see call today tomorrow
following number information business service data system group company office support issue
question help include provide process access account address agenda approve available budget change
check client contact contract cost date deadline deliver detail document draft email end feedback
file final forward further hope important invoice item latest list manager market message month note
offer order payment point policy price priority product proposal quarter request required result
sales schedule share status summary task training travel version vendor discuss confirm regarding
already around available below best better board book bring build case cause center chance close
come comment complete concern consider continue current deal decision department design development
direction discussion due early effort either engineering enough ensure every example expect experience
fact find finance focus full future general give great happy hear high hold idea impact improve
issue keep kind last late lead learn leave level line little long look lot main major material
mean member mind minute model move name near network nice open operation option original outside
own performance person phone place position possible potential present problem production progress
purpose quality quick quite ready real reason receive recent record reference related release remain
reply resource response responsible revenue right risk role room run safety second security seem
senior set several short show side sign simple since site situation small solution soon source
specific staff stage standard start step strategy strong structure subject suggest support sure take
target technical tell term test thing though three together topic total track true try turn type
understand unit upon usually value various view want whether while within without word world write
yet again against along among another anything area ask away begin believe big body certain clear
cover different down enough everyone family feel few follow form found free friend get go got hand
head help home house however keep large later least less life local lose matter might money morning
never night nothing often old once order others over pay perhaps play power pretty public put rather
read really rest say school seen self sense serve she small something sometimes soon stand state stay
story study such sure system table talk thought thus told took toward town tried under until used
using wait walk watch water whole why wife within woman women yes young afternoon evening monday
tuesday wednesday thursday friday saturday sunday january february march april june july august
september october november december server database backup storage restore cluster volume disk tape
capacity migration upgrade patch maintenance window outage incident ticket escalation vendor license
renewal audit compliance legal privacy retention archive mailbox folder calendar invitation reminder
conference presentation slide spreadsheet analysis forecast estimate headcount hiring interview
candidate onboarding offsite workshop session webinar demo prototype milestone roadmap sprint backlog
feature requirement specification architecture integration deployment environment production staging
customer partner supplier shipment delivery warehouse inventory procurement purchase quote discount
margin profit loss growth region territory account opportunity pipeline lead campaign launch brand
website content social media press announcement newsletter survey response rate score metric dashboard
goal objective initiative program portfolio stakeholder sponsor executive director president officer
manager lead engineer analyst consultant specialist coordinator assistant administrator associate
intern contractor`

// wordStems are extended with suffixes to grow the vocabulary to vocabSize.
var wordSuffixes = []string{"s", "ed", "ing", "er", "ly", "ment", "ation", "able", "ness", "al", "ive", "ity"}

const vocabSize = 2000

// buildVocabulary returns vocabSize distinct lower-case words, most frequent
// first.
func buildVocabulary() []string {
	seen := make(map[string]bool, vocabSize)
	out := make([]string, 0, vocabSize)
	base := strings.Fields(commonWords)
	for _, w := range base {
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	stems := out[100:] // skip function words for derivation
	for _, suf := range wordSuffixes {
		for _, s := range stems {
			if len(out) == vocabSize {
				return out
			}
			w := s
			if strings.HasSuffix(w, "e") && (suf[0] == 'e' || suf[0] == 'i' || suf[0] == 'a') {
				w = w[:len(w)-1]
			}
			w += suf
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out
}

var firstNames = strings.Fields(`James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth
William Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy
Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua
Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah Ronald Stephanie Edward
Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley
Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott Nicole Brandon Helen Benjamin Samantha Samuel
Katherine Gregory Christine Alexander Debra Frank Rachel Patrick Carolyn Raymond Janet Jack Catherine
Dennis Maria Jerry Heather Tyler Diane Aaron Ruth Jose Julie Adam Olivia Henry Joyce Nathan Virginia
Priya Wei Hiroshi Fatima Lars Ingrid Mateo Sofia Pierre Amelie Klaus Anja Raj Mei Oluwaseun Chiara`)

var lastNames = strings.Fields(`Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez
Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White
Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner
Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan
Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James
Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez
Schmidt Mueller Tanaka Suzuki Chen Wang Singh Kumar Rossi Dubois Larsen Novak Kowalski Okafor Silva`)

var domains = strings.Fields(`contoso.com fabrikam.com northwindtraders.com adventure-works.com
tailspintoys.com wingtiptoys.com litwareinc.com proseware.com fourthcoffee.com woodgrovebank.com
lucernepublishing.com margiestravel.com alpineskihouse.com blueyonderairlines.com cohovineyard.com
wideworldimporters.com humongousinsurance.com graphicdesigninstitute.com treyresearch.net
adatum.com consolidatedmessenger.com cpandl.com fineartschool.net southridgevideo.com
thephone-company.com worldwideimporters.com relecloud.com bellowscollege.com`)

var titles = []string{"Senior Account Manager", "Director of Operations", "Software Engineer",
	"Project Manager", "Financial Analyst", "VP Sales, EMEA", "IT Administrator", "Marketing Specialist",
	"Chief Technology Officer", "Customer Success Lead", "Procurement Coordinator", "Legal Counsel"}

var disclaimers = []string{
	`CONFIDENTIALITY NOTICE: This e-mail message, including any attachments, is for the sole use of
the intended recipient(s) and may contain confidential and privileged information. Any unauthorized
review, use, disclosure or distribution is prohibited. If you are not the intended recipient, please
contact the sender by reply e-mail and destroy all copies of the original message.`,
	`This message and any attachments are intended only for the addressee and may contain information
that is privileged, confidential or exempt from disclosure under applicable law. If you have received
this communication in error, please notify the sender immediately and delete it from your system.
E-mail transmission cannot be guaranteed to be secure or error-free. The company accepts no liability
for any damage caused by any virus transmitted by this e-mail. Please consider the environment before
printing this e-mail.`,
	`DISCLAIMER: The information contained in this communication is confidential and may be legally
privileged. It is intended solely for the use of the individual or entity to whom it is addressed
and others authorised to receive it. If you are not the intended recipient you are hereby notified
that any disclosure, copying, distribution or taking any action in reliance on the contents of this
information is strictly prohibited and may be unlawful. Registered office: 1 Harbour Exchange
Square, London E14 9GE. Registered in England and Wales No. 01234567.`,
}

var attachmentTypes = []struct{ ext, ctype string }{
	{"pdf", "application/pdf"},
	{"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
	{"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
	{"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
	{"jpg", "image/jpeg"},
	{"png", "image/png"},
	{"zip", "application/zip"},
}

var mailboxFolders = []string{"Inbox", "Sent Items", "Deleted Items", "Drafts", "Archive", "Projects", "Customers", "Travel"}

var publicFolders = []string{"Announcements", "Help Desk", "Sales Leads", "Engineering", "Human Resources", "Facilities", "Social", "Library"}

const numFolders = 8

// stockSentences are common business-mail sentences; a share of generated
// sentences is taken from this list, as real mail is full of them.
var stockSentences = []string{
	"Please let me know if you have any questions.",
	"Thanks for your help with this.",
	"I hope this email finds you well.",
	"As discussed in the meeting yesterday, please find the details below.",
	"Could you please review the attached document and send me your comments by end of day?",
	"Let me know if you need anything else from my side.",
	"I will follow up with the team and get back to you as soon as possible.",
	"Please see my comments inline below.",
	"Thank you for the quick turnaround on this.",
	"Looking forward to hearing from you.",
	"Adding the rest of the team for visibility.",
	"Can we schedule a call this week to discuss the next steps?",
	"I have attached the latest version of the report for your review.",
	"Apologies for the delay in getting back to you.",
	"Please treat this information as confidential.",
	"Happy to discuss further if needed.",
	"Just following up on my previous email below.",
	"Per our conversation, I have updated the proposal accordingly.",
	"The meeting has been moved to Thursday at 10 AM Pacific time.",
	"Please make sure the numbers are updated before the quarterly business review.",
	"We are still waiting for the final approval from finance.",
	"I am out of the office next week with limited access to email.",
	"Could you confirm that the invoice has been processed?",
	"Moving this thread to the project channel.",
	"Great work everyone, thanks for pulling this together.",
	"Please find attached the minutes from today's meeting.",
	"Let's sync up offline about the open items.",
	"I'll send out a calendar invitation shortly.",
	"The deadline for submissions is Friday at 5 PM.",
	"Feel free to reach out to me directly with any concerns.",
	"We need to align on the scope before we commit to a delivery date.",
	"The customer has asked for an updated quote including the support renewal.",
	"This should be resolved with the latest patch that was deployed last night.",
	"Please do not forward this message outside the company.",
	"Thanks, this looks good to me.",
	"Sounds good, let's go ahead with the second option.",
}
