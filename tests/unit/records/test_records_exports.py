"""Each tool's export, as the tool writes it (see fixtures/_make_fixtures.py), read to the exact records.

Every expected record was checked by hand: the phone's country code is its row's country's, the
names, dates and consents are what the export says. Rows not listed here are not in the file.
"""

from __future__ import annotations

from typing import Any, Final

import pytest

from .conftest import Reader

Outcome = dict[str, Any] | tuple[str, ...]  # the record, or the row's errors

GOOGLE_CONTACTS_OLD_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Asha",
        "lastName": "Verma",
        "phoneNumber": "+919811122233",
        "email": "asha.verma@example.in",
        "address1": "12-B MG Road",
        "address2": "Flat 3",
        "city": "Pune",
        "state": "Maharashtra",
        "country": "India",
        "tags": ["Customers"],  # Google's own "* myContacts" group is no label
        "alternatePhoneNumber": "+912026123456",
    },
    3: {
        "firstName": "Somchai",
        "lastName": "Jaidee",
        "phoneNumber": "+66812345678",
        "email": "somchai@example.co.th",
        "address1": "99 Sukhumvit Rd",
        "city": "Bangkok",
        "country": "Thailand",
    },
    4: ('"lastName" is required ("Name" has one word: give the name as first and last name)',),
    5: {  # "meera.nair@example.in ::: Meera@Work.Example.in": the first of Google's joined addresses
        "firstName": "Meera",
        "lastName": "Nair",
        "phoneNumber": "+919820012345",
        "email": "meera.nair@example.in",
        "country": "India",
    },
    6: ('"email" (from "E-mail 1 - Value") must be a valid email',),  # its first address is none
}

GOOGLE_CONTACTS_OLD_IGNORED: Final = [
    "Additional Name",
    "Nickname",
    "Birthday",
    "Notes",
    "E-mail 1 - Type",
    "E-mail 2 - Type",
    "E-mail 2 - Value",
    "Phone 1 - Type",
    "Phone 2 - Type",
    "Address 1 - Type",
    "Address 1 - Formatted",
    "Address 1 - PO Box",
    "Address 1 - Postal Code",
    "Organization 1 - Name",
]

GOOGLE_CONTACTS_NEW_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Rahim",
        "lastName": "Uddin",
        "phoneNumber": "+8801712345678",
        "email": "rahim.uddin@example.com.bd",
        "address1": "House 5, Road 12",
        "city": "Dhaka",
        "country": "Bangladesh",
        "tags": ["Wholesale"],
        "alternatePhoneNumber": "+88029876543",
    },
    3: {
        "firstName": "José",
        "lastName": "Fernandes",
        "phoneNumber": "+351912345678",
        "email": "josé@example.com",
    },
    4: {  # "Ravi.Menon@example.in ::: ravi@work.example.in"
        "firstName": "Ravi",
        "lastName": "Menon",
        "phoneNumber": "+919847011223",
        "email": "ravi.menon@example.in",
        "country": "India",
    },
}

GOOGLE_CONTACTS_NEW_IGNORED: Final = [
    "Middle Name",
    "Phonetic First Name",
    "Phonetic Middle Name",
    "Phonetic Last Name",
    "Name Prefix",
    "Name Suffix",
    "Nickname",
    "File As",
    "Organization Name",
    "Organization Title",
    "Organization Department",
    "Birthday",
    "Notes",
    "Photo",
    "E-mail 1 - Label",
    "Phone 1 - Label",
    "Phone 2 - Label",
    "Address 1 - Label",
    "Address 1 - Formatted",
    "Address 1 - PO Box",
    "Address 1 - Postal Code",
]

HUBSPOT_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Priya",
        "lastName": "Sharma",
        "phoneNumber": "+919876543210",
        "email": "priya.sharma@example.in",
        "city": "Mumbai",
        "state": "Maharashtra",
        "country": "India",
        "createdAt": "2024-03-05T10:20:00",
        "updatedAt": "2024-03-06T11:42:00",
        "partnerCustomerId": "51",
        "alternatePhoneNumber": "+912223456789",
    },
    3: {
        "firstName": "John",
        "lastName": "Miller",
        "phoneNumber": "+14155552671",
        "email": "john.miller@example.com",
        "city": "San Francisco",
        "state": "California",
        "country": "United States",
        "createdAt": "2024-03-07T08:05:00",
        "updatedAt": "2024-03-07T08:05:00",
        "partnerCustomerId": "52",
    },
}

HUBSPOT_IGNORED: Final = [
    "Lifecycle Stage",
    "Contact owner",
    "Marketing contact status",
    "Phone Number (column 15)",
]

MAILCHIMP_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Meera",
        "lastName": "Kulkarni",
        "phoneNumber": "+919822012345",
        "email": "meera@example.in",
        "address1": "5 FC Road  Pune MH 411004 IN",
        "state": "MH",
        "country": "IN",
        "createdAt": "2024-03-05T10:20:30",
        "updatedAt": "2024-03-06T09:00:00",
        "tags": ["Customer", "VIP"],
    },
    3: {
        "firstName": "Ollie",
        "lastName": "Smith",
        "phoneNumber": "+447911123456",
        "email": "ollie@example.co.uk",
        "country": "GB",
        "createdAt": "2024-02-01T18:00:00",
        "updatedAt": "2024-02-01T18:00:00",
    },
}

MAILCHIMP_IGNORED: Final = [
    "Birthday",
    "MEMBER_RATING",
    "OPTIN_IP",
    "CONFIRM_TIME",
    "CONFIRM_IP",
    "LATITUDE",
    "LONGITUDE",
    "GMTOFF",
    "DSTOFF",
    "TIMEZONE",
    "LEID",
    "EUID",
    "NOTES",
]

KLAVIYO_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Kabir",
        "lastName": "Khan",
        "source": "Shopify",
        "phoneNumber": "+919811122233",
        "email": "kabir@example.in",
        "address1": "12 Linking Road",
        "city": "Mumbai",
        "state": "Maharashtra",
        "country": "India",
        "createdAt": "2024-03-05T10:20:30",
        "emailMarketingConsent": True,
        "smsMarketingConsent": False,
    },
    3: {
        "firstName": "Sara",
        "lastName": "Lee",
        "source": "Sign-up form",
        "email": "sara@example.com",
        "createdAt": "2024-01-15T07:45:00",
        "emailMarketingConsent": False,
    },
}

KLAVIYO_IGNORED: Final = ["Organization", "Title", "Zip Code", "Last Active", "Klaviyo ID"]

SALESFORCE_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Ananya",
        "lastName": "Reddy",
        "source": "Web",
        "phoneNumber": "+919866012345",
        "email": "ananya@example.in",
        "address1": "8 Banjara Hills",
        "city": "Hyderabad",
        "state": "Telangana",
        "country": "India",
        "createdAt": "2024-03-25",
        "partnerCustomerId": "0035g00000ABCdeAAB",
        "alternatePhoneNumber": "+914023356789",
    },
    3: {
        "firstName": "Tom",
        "lastName": "Baker",
        "source": "Trade Show",
        "phoneNumber": "+14155552671",
        "email": "tom@example.com",
        "address1": "1 Market St",
        "city": "San Francisco",
        "state": "CA",
        "country": "USA",
        "createdAt": "2024-04-02",
        "partnerCustomerId": "0035g00000ABCdfAAB",
    },
}

SALESFORCE_IGNORED: Final = ["Salutation", "Title", "Account Name", "Mailing Zip/Postal Code"]

ZOHO_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Vikram",
        "lastName": "Gupta",
        "source": "Advertisement",
        "phoneNumber": "+919988776655",
        "email": "vikram@example.in",
        "address1": "22 Chandni Chowk",
        "city": "Delhi",
        "state": "Delhi",
        "country": "India",
        "createdAt": "2024-03-05T10:20:30",
        "updatedAt": "2024-03-06T11:00:00",
        "tags": ["wholesale", "north"],
        "partnerCustomerId": "zcrm_4150868000000224005",
        "alternatePhoneNumber": "+911123456789",
    }
}

ZOHO_IGNORED: Final = [
    "Contact Owner",
    "Account Name",
    "Title",
    "Email Opt Out",
    "Mailing Zip",
    "Description",
]

OUTLOOK_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "René",
        "lastName": "Dubois",
        "phoneNumber": "+33612345678",
        "email": "rene.dubois@example.fr",
        "address1": "3 rue Cler",
        "city": "Paris",
        "country": "France",
        "alternatePhoneNumber": "+33142685300",
    }
}

OUTLOOK_IGNORED: Final = [
    "Middle Name",
    "Title",
    "Suffix",
    "Nickname",
    "E-mail 2 Address",
    "E-mail 3 Address",
    "Home Phone 2",
    "Business Phone 2",
    "Car Phone",
    "Pager",
    "Business Fax",
    "Home Fax",
    "Job Title",
    "Department",
    "Company",
    "Business Postal Code",
    "Home Postal Code",
    "Birthday",
    "Anniversary",
    "Notes",
    "Categories",
]

MAGENTO_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Isha",
        "lastName": "Kapoor",
        "phoneNumber": "+919811122233",
        "email": "isha@example.in",
        "address1": "12 Linking Road",
        "city": "Mumbai",
        "state": "Maharashtra",
        "country": "IN",
        "createdAt": "2024-03-05T10:20:30",
    },
    # An extra address of the customer above: not a person of its own, so not sent as one.
    3: ('"firstName" is required', '"lastName" is required'),
}

MAGENTO_IGNORED: Final = [
    "_website",
    "_store",
    "confirmation",
    "created_in",
    "dob",
    "gender",
    "group_id",
    "middlename",
    "prefix",
    "store_id",
    "suffix",
    "taxvat",
    "website_id",
    "_address_company",
    "_address_fax",
    "_address_firstname",
    "_address_lastname",
    "_address_postcode",
    "_address_default_billing_",
    "_address_default_shipping_",
]

BIGCOMMERCE_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Arjun",
        "lastName": "Reddy",
        "phoneNumber": "+918899776655",
        "email": "arjun@example.in",
        "address1": "3 Church Street",
        "city": "Bengaluru",
        "state": "Karnataka",
        "country": "India",
        "createdAt": "2024-03-25",
        "partnerCustomerId": "17",
        "alternatePhoneNumber": "+918899776600",
    },
    3: {
        "firstName": "Lucía",
        "lastName": "García",
        "phoneNumber": "+34612345678",
        "email": "lucia@example.es",
        "address1": "Calle Mayor 1",
        "city": "Madrid",
        "state": "Madrid",
        "country": "Spain",
        "createdAt": "2024-04-02",
        "partnerCustomerId": "18",
    },
}

BIGCOMMERCE_IGNORED: Final = [
    "Company",
    "Notes",
    "Store Credit",
    "Customer Group",
    "Receive Review/Marketing Emails?",
    "Address First Name",
    "Address Last Name",
    "Address Company",
    "Zip/Postcode",
]

CHATWOOT_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Tanvi",
        "lastName": "Shah",
        "phoneNumber": "+919700112233",
        "email": "tanvi@example.in",
        "city": "Ahmedabad",
        "country": "India",
        "createdAt": "2024-03-05T10:20:30+00:00",
        "partnerCustomerId": "cust-301",
    },
    3: ('"lastName" is required ("name" has one word: give the name as first and last name)',),
}

CHATWOOT_IGNORED: Final = ["last_activity_at"]

GHOST_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Nikhil",
        "lastName": "Das",
        "email": "nikhil@example.in",
        "createdAt": "2024-03-05T10:20:30+00:00",
        "emailMarketingConsent": True,
        "tags": ["newsletter", "early-bird"],
        "partnerCustomerId": "65e6f2a1c0e8b40001a1b2c3",
    },
    3: ('"firstName" is required', '"lastName" is required'),
}

GHOST_IGNORED: Final = ["note", "complimentary_plan", "stripe_customer_id", "deleted_at", "tiers"]

CRM_INDIA_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Rohan",
        "lastName": "Iyer",
        "phoneNumber": "+919845012345",
        "email": "rohan.iyer@example.in",
        "city": "Chennai",
        "country": "India",
    },
    3: {
        "firstName": "Sunita Devi",
        "lastName": "Sharma",
        "phoneNumber": "+919876512345",
        "city": "Jaipur",
        "country": "IN",
    },
    4: ('"lastName" is required ("Customer Name" has one word: give the name as first and last name)',),
}

CRM_INDIA_IGNORED: Final[list[str]] = []

CRM_THAILAND_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Somsak",
        "lastName": "Wongsawat",
        "phoneNumber": "+66812345678",
        "email": "somsak@example.co.th",
        "city": "Bangkok",
        "country": "Thailand",
    },
    3: {
        "firstName": "Nok",
        "lastName": "Chaiyaporn",
        "phoneNumber": "+6621234567",
        "city": "Bangkok",
        "country": "THAILAND",
    },
}

CRM_THAILAND_IGNORED: Final[list[str]] = []

CRM_BANGLADESH_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "Rahim",
        "lastName": "Uddin",
        "phoneNumber": "+8801712345678",
        "email": "rahim@example.com.bd",
        "city": "Dhaka",
        "country": "Bangladesh",
    },
    3: {
        "firstName": "Fatema",
        "lastName": "Begum",
        "phoneNumber": "+8801812345678",
        "city": "Chattogram",
        "country": "bangladesh",
    },
    4: ('"phoneNumber" (from "Mobile No") must be a valid phone number',),
}

CRM_BANGLADESH_IGNORED: Final[list[str]] = []

SHOPIFY_FOREIGN_ROWS: Final[dict[int, Outcome]] = {
    2: {
        "firstName": "John",
        "lastName": "Miller",
        "phoneNumber": "+14155552671",
        "email": "john.miller@example.com",
        "address1": "1 Market St",
        "city": "San Francisco",
        "state": "CA",
        "country": "US",
        "emailMarketingConsent": True,
        "smsMarketingConsent": False,
        "partnerCustomerId": "7210448309001",
        "alternatePhoneNumber": "+14155552672",
    },
    3: {
        "firstName": "João",
        "lastName": "Silva",
        "phoneNumber": "+5511912345678",
        "email": "joao@example.com.br",
        "address1": "Av. Paulista 1000",
        "city": "São Paulo",
        "state": "SP",
        "country": "BR",
        "emailMarketingConsent": False,
        "smsMarketingConsent": True,
        "partnerCustomerId": "7210448309002",
    },
    4: {
        "firstName": "Chidi",
        "lastName": "Okafor",
        "phoneNumber": "+2348031234567",
        "email": "chidi@example.ng",
        "address1": "5 Allen Avenue",
        "city": "Lagos",
        "state": "LA",
        "country": "NG",
        "emailMarketingConsent": False,
        "smsMarketingConsent": False,
        "partnerCustomerId": "7210448309003",
    },
    5: {
        "firstName": "Ollie",
        "lastName": "Smith",
        "phoneNumber": "+447911123456",
        "email": "ollie@example.co.uk",
        "address1": "10 Downing St",
        "city": "London",
        "country": "GB",
        "emailMarketingConsent": True,
        "smsMarketingConsent": False,
        "partnerCustomerId": "7210448309004",
    },
    6: {
        "firstName": "Lucía",
        "lastName": "García",
        "phoneNumber": "+34612345678",
        "email": "lucia@example.es",
        "address1": "Calle Mayor 1",
        "city": "Madrid",
        "state": "M",
        "country": "ES",
        "emailMarketingConsent": False,
        "smsMarketingConsent": False,
        "partnerCustomerId": "7210448309005",
    },
}

SHOPIFY_FOREIGN_IGNORED: Final = [
    "Default Address Company",
    "Default Address Zip",
    "Total Spent",
    "Total Orders",
    "Note",
    "Tax Exempt",
]

WOOCOMMERCE_REST_ROWS: Final[dict[int, Outcome]] = {
    1: {
        "firstName": "Meera",
        "lastName": "Kulkarni",
        "phoneNumber": "+919822012345",
        "email": "meera@example.in",
        "address1": "5 FC Road",
        "city": "Pune",
        "state": "MH",
        "country": "IN",
        "createdAt": "2024-03-05T10:20:30",
        "updatedAt": "2024-03-06T11:00:00",
        "partnerCustomerId": "25",
    },
    2: {
        "firstName": "Somchai",
        "lastName": "Jaidee",
        "phoneNumber": "+66812345678",
        "email": "somchai@example.co.th",
        "address1": "99 Sukhumvit Rd",
        "city": "Bangkok",
        "state": "TH-10",
        "country": "TH",
        "createdAt": "2024-03-07T09:00:00",
        "updatedAt": "2024-03-07T09:00:00",
        "partnerCustomerId": "26",
    },
}

WOOCOMMERCE_REST_IGNORED: Final = [
    "role",
    "username",
    "billing.company",
    "billing.postcode",
    "shipping.company",
    "shipping.postcode",
    "is_paying_customer",
    "avatar_url",
    "meta_data",
    "_links.self",
    "_links.collection",
]

SHOPIFY_ADMIN_API_ROWS: Final[dict[int, Outcome]] = {
    1: {
        "firstName": "Priya",
        "lastName": "Sharma",
        "phoneNumber": "+919876543210",
        "email": "priya.sharma@example.in",
        "address1": "14, MG Road",
        "address2": "Flat 3B",
        "city": "Bengaluru",
        "state": "Karnataka",
        "country": "India",
        "createdAt": "2024-03-05T10:20:30+05:30",
        "updatedAt": "2024-03-06T11:00:00+05:30",
        "emailMarketingConsent": True,
        "smsMarketingConsent": False,
        "tags": ["vip", "repeat-buyer"],
        "partnerCustomerId": "7210448301122",
        "alternatePhoneNumber": "+918025581234",
    },
    2: {
        "firstName": "John",
        "lastName": "Miller",
        "phoneNumber": "+14155552671",
        "address1": "1 Market St",
        "city": "San Francisco",
        "state": "California",
        "country": "United States",
        "createdAt": "2024-03-07T08:00:00-05:00",
        "updatedAt": "2024-03-07T08:00:00-05:00",
        "partnerCustomerId": "7210448301123",
    },
}

SHOPIFY_ADMIN_API_IGNORED: Final = [
    "orders_count",
    "state",
    "total_spent",
    "last_order_id",
    "note",
    "verified_email",
    "multipass_identifier",
    "tax_exempt",
    "last_order_name",
    "currency",
    "addresses",
    "tax_exemptions",
    "email_marketing_consent.opt_in_level",
    "email_marketing_consent.consent_updated_at",
    "sms_marketing_consent.opt_in_level",
    "sms_marketing_consent.consent_updated_at",
    "sms_marketing_consent.consent_collected_from",
    "admin_graphql_api_id",
    "default_address.id",
    "default_address.customer_id",
    "default_address.company",
    "default_address.zip",
    "default_address.default",
]


LAYOUTS: Final = [
    ("google_contacts_old.csv", "utf-8", GOOGLE_CONTACTS_OLD_ROWS, GOOGLE_CONTACTS_OLD_IGNORED),
    ("google_contacts_new.csv", "utf-8", GOOGLE_CONTACTS_NEW_ROWS, GOOGLE_CONTACTS_NEW_IGNORED),
    ("hubspot.csv", "utf-8-sig", HUBSPOT_ROWS, HUBSPOT_IGNORED),
    ("mailchimp.csv", "utf-8", MAILCHIMP_ROWS, MAILCHIMP_IGNORED),
    ("klaviyo.csv", "utf-8", KLAVIYO_ROWS, KLAVIYO_IGNORED),
    ("salesforce.csv", "utf-8", SALESFORCE_ROWS, SALESFORCE_IGNORED),
    ("zoho.csv", "utf-8-sig", ZOHO_ROWS, ZOHO_IGNORED),
    ("outlook.csv", "cp1252", OUTLOOK_ROWS, OUTLOOK_IGNORED),
    ("magento.csv", "utf-8", MAGENTO_ROWS, MAGENTO_IGNORED),
    ("bigcommerce.csv", "utf-8", BIGCOMMERCE_ROWS, BIGCOMMERCE_IGNORED),
    ("chatwoot.csv", "utf-8", CHATWOOT_ROWS, CHATWOOT_IGNORED),
    ("ghost.csv", "utf-8", GHOST_ROWS, GHOST_IGNORED),
    ("crm_india.csv", "utf-8-sig", CRM_INDIA_ROWS, CRM_INDIA_IGNORED),
    ("crm_thailand.csv", "utf-8-sig", CRM_THAILAND_ROWS, CRM_THAILAND_IGNORED),
    ("crm_bangladesh.csv", "utf-8-sig", CRM_BANGLADESH_ROWS, CRM_BANGLADESH_IGNORED),
    ("shopify_foreign.csv", "utf-8", SHOPIFY_FOREIGN_ROWS, SHOPIFY_FOREIGN_IGNORED),
    ("woocommerce_rest.json", "utf-8", WOOCOMMERCE_REST_ROWS, WOOCOMMERCE_REST_IGNORED),
    ("shopify_admin_api.json", "utf-8", SHOPIFY_ADMIN_API_ROWS, SHOPIFY_ADMIN_API_IGNORED),
]


@pytest.mark.parametrize(
    ("name", "encoding", "expected", "ignored"), LAYOUTS, ids=[row[0] for row in LAYOUTS]
)
def test_each_tools_export_becomes_the_exact_records_and_lists_what_it_ignored(
    read_fixture: Reader, name: str, encoding: str, expected: dict[int, Outcome], ignored: list[str]
) -> None:
    # Given a tool's export as the tool writes it
    # When it is read
    record_file, rows = read_fixture(name)
    # Then every row becomes exactly its record (or its reasons), and the unmapped columns are listed
    assert record_file.encoding == encoding
    assert {row.number: row.record if row.record is not None else row.errors for row in rows} == expected
    assert all((row.record is None) == bool(row.errors) for row in rows)
    assert record_file.ignored_columns == ignored


def test_hubspots_second_phone_number_column_is_listed_not_merged(read_fixture: Reader) -> None:
    # Given HubSpot's export with a second "Phone Number" column (column 15) holding 9000011111
    record_file, rows = read_fixture("hubspot.csv")
    # Then it is listed by position and its number is in no record
    assert "Phone Number (column 15)" in record_file.ignored_columns
    assert all("+919000011111" not in (row.record or {}).values() for row in rows)


def test_a_second_hubspot_phone_number_can_be_mapped_by_position(read_fixture: Reader) -> None:
    # Given a mapping naming the 15th column
    _, rows = read_fixture("hubspot.csv", mapping={"#15": "alternatePhoneNumber"})
    # Then it is the alternate, beating the landline that would otherwise fill it
    assert rows[0].record is not None and rows[0].record["alternatePhoneNumber"] == "+919000011111"


def test_a_guarded_crm_placeholder_email_leaves_the_phone_as_the_identity(read_fixture: Reader) -> None:
    # Given the Indian CRM row with "N/A" in Email ID and a guarded '09876512345
    _, rows = read_fixture("crm_india.csv")
    # Then the email is absent (not "n/a"), and the phone is the Indian mobile
    assert rows[1].record is not None
    assert "email" not in rows[1].record and rows[1].record["phoneNumber"] == "+919876512345"


def test_salesforces_report_footer_lines_are_not_rejects(read_fixture: Reader) -> None:
    # Given Salesforce's report export, which ends with "Confidential Information..." and a copyright line
    _, rows = read_fixture("salesforce.csv")
    # Then only the two contacts are rows
    assert [row.number for row in rows] == [2, 3]
