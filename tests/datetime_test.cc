#include <gtest/gtest.h>

#include "interop/interop.h"

namespace medvault::interop {
namespace {

std::string Norm(std::string_view s) {
  Result<std::string> r = NormalizeDateTime(s);
  return r.ok() ? *r : "ERROR: " + r.status().message();
}

TEST(NormalizeDateTime, Hl7TimestampsToFhirSyntax) {
  EXPECT_EQ(Norm("2012"), "2012");
  EXPECT_EQ(Norm("201208"), "2012-08");
  EXPECT_EQ(Norm("20120806"), "2012-08-06");
  EXPECT_EQ(Norm("2012080610"), "2012-08-06T10:00:00");
  EXPECT_EQ(Norm("201208061030"), "2012-08-06T10:30:00");
  EXPECT_EQ(Norm("20120806103015"), "2012-08-06T10:30:15");
  EXPECT_EQ(Norm("20120806103015.123"), "2012-08-06T10:30:15.123");
  EXPECT_EQ(Norm("20120806103015-0500"), "2012-08-06T10:30:15-05:00");
  EXPECT_EQ(Norm("201208061030+0530"), "2012-08-06T10:30:00+05:30");
  EXPECT_EQ(Norm("20120806103015+0000"), "2012-08-06T10:30:15Z");
  // A zone on a date alone has no place in a FHIR date.
  EXPECT_EQ(Norm("20120806-0500"), "2012-08-06");
}

TEST(NormalizeDateTime, FhirDatesAndDateTimes) {
  EXPECT_EQ(Norm("2012-08"), "2012-08");
  EXPECT_EQ(Norm("2012-08-06"), "2012-08-06");
  EXPECT_EQ(Norm("2012-08-06T10:30:15Z"), "2012-08-06T10:30:15Z");
  EXPECT_EQ(Norm("2012-08-06T10:30:15+00:00"), "2012-08-06T10:30:15Z");
  EXPECT_EQ(Norm("2012-08-06T10:30:15.5-03:00"), "2012-08-06T10:30:15.5-03:00");
  EXPECT_EQ(Norm("2012-08-06T10:30"), "2012-08-06T10:30:00");
  EXPECT_EQ(Norm("2000-02-29"), "2000-02-29");
}

TEST(NormalizeDateTime, RefusesWhatIsNotADate) {
  for (std::string_view bad : {"",
                               "20",
                               "201",
                               "2012080",
                               "20121306",
                               "20120230",
                               "19000229",
                               "0000",
                               "2012-13",
                               "2012-02-30",
                               "2012-08-06T25:00:00Z",
                               "2012-08-06T10:61:00Z",
                               "2012-08-06 10:30:00",
                               "2012-08-06T10:30:15+15:00",
                               "2012-08-06T10:30:15.+01:00",
                               "abcd",
                               "2012-08-06Tx",
                               "20120806103015-5",
                               "2012080610301X",
                               "123456789012345678901234567890123456789012345"}) {
    Result<std::string> r = NormalizeDateTime(bad);
    EXPECT_FALSE(r.ok()) << "accepted: " << bad << " as " << (r.ok() ? *r : "");
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(NormalizeDateTime, Hl7RoundTrip) {
  for (std::string_view ts : {"2012", "201208", "20120806", "20120806103015",
                              "20120806103015.123-0500", "20120806103015+0530"}) {
    Result<std::string> canonical = NormalizeDateTime(ts);
    ASSERT_TRUE(canonical.ok()) << ts;
    Result<std::string> again = NormalizeDateTime(ToHl7Timestamp(*canonical));
    ASSERT_TRUE(again.ok()) << ToHl7Timestamp(*canonical);
    EXPECT_EQ(*again, *canonical);
  }
  EXPECT_EQ(ToHl7Timestamp("2012-08-06T10:30:15Z"), "20120806103015+0000");
  EXPECT_EQ(ToHl7Timestamp("2012-08-06T10:30:15-05:00"), "20120806103015-0500");
  EXPECT_EQ(ToHl7Timestamp("2012-08-06"), "20120806");
}

TEST(CodeSystems, WellKnownOidsAndUris) {
  EXPECT_EQ(CodeSystemUri("2.16.840.1.113883.6.1"), "http://loinc.org");
  EXPECT_EQ(CodeSystemUri("urn:oid:2.16.840.1.113883.6.96"), "http://snomed.info/sct");
  EXPECT_EQ(CodeSystemUri("2.16.840.1.113883.12.292"), "http://hl7.org/fhir/sid/cvx");
  EXPECT_EQ(CodeSystemUri("1.2.3.4"), "urn:oid:1.2.3.4");
  EXPECT_EQ(CodeSystemUri("http://example.org/codes"), "http://example.org/codes");
  EXPECT_EQ(CodeSystemUri(""), "");
  EXPECT_EQ(CodeSystemOid("http://loinc.org"), "2.16.840.1.113883.6.1");
  EXPECT_EQ(CodeSystemOid("http://www.nlm.nih.gov/research/umls/rxnorm"), "2.16.840.1.113883.6.88");
  EXPECT_EQ(CodeSystemOid("urn:oid:1.2.3.4"), "1.2.3.4");
  EXPECT_EQ(CodeSystemOid("http://example.org/codes"), "");
}

}  // namespace
}  // namespace medvault::interop
