#!/usr/bin/env python3
"""Writes a FHIR R4 collection Bundle with one patient and N observations
(laboratory results over 25 LOINC codes, a fifth of them flagged high, and
blood pressure panels), for `make bench`'s clinical summary figure.

usage: gen-observations.py N > bundle.json"""
import json
import sys

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
LABS = [("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 5.0, 9.0),
        ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 200),
        ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 120, 280),
        ("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 50, 400),
        ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 25, 90),
        ("13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
         "mg/dL", 50, 220),
        ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.5, 2.5),
        ("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 6, 40),
        ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 130, 150),
        ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.0, 5.8),
        ("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 95, 110),
        ("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 20, 32),
        ("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.0, 11.0),
        ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 10, 18),
        ("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 30, 52),
        ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 3, 14),
        ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 120, 450),
        ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted", "mL/min/{1.73_m2}", 30, 120),
        ("14959-1", "Microalbumin/Creatinine [Mass Ratio] in Urine", "mg/g", 5, 300),
        ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
         "U/L", 7, 80),
        ("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
         "U/L", 8, 70),
        ("6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
         "U/L", 40, 160),
        ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.2, 1.8),
        ("2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 5.5, 8.5),
        ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.0, 5.2)]
HIGH = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "H"}]}

entries = [{"fullUrl": "urn:uuid:bench-patient", "resource": {
    "resourceType": "Patient", "id": "bench-patient",
    "identifier": [{"system": "http://bench.example/mrn", "value": "BENCH-5000",
                    "type": {"coding": [{"code": "MR"}]}}],
    "name": [{"family": "Summary", "given": ["Bench"]}],
    "gender": "female", "birthDate": "1950-01-01"}}]
for i in range(N):
    day = 1 + i // 4  # four a day, going back in time
    year, rem = 2026 - day // 336, day % 336
    when = "%04d-%02d-%02dT%02d:00:00Z" % (year, 1 + rem // 28, 1 + rem % 28, 6 + (i % 4) * 3)
    obs = {"resourceType": "Observation", "id": "o%d" % i, "status": "final",
           "subject": {"reference": "urn:uuid:bench-patient"}, "effectiveDateTime": when}
    if i % 10 == 9:
        obs["category"] = [{"coding": [{"code": "vital-signs"}]}]
        obs["code"] = {"coding": [{"system": "http://loinc.org", "code": "85354-9",
                                   "display": "Blood pressure panel"}]}
        obs["component"] = [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 110 + i % 50, "unit": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": 70 + i % 25, "unit": "mm[Hg]"}}]
    else:
        code, name, unit, low, high = LABS[i % len(LABS)]
        value = round(low + (high - low) * ((i * 37) % 100) / 100.0, 1)
        obs["category"] = [{"coding": [{"code": "laboratory"}]}]
        obs["code"] = {"coding": [{"system": "http://loinc.org", "code": code, "display": name}]}
        obs["valueQuantity"] = {"value": value, "unit": unit,
                                "system": "http://unitsofmeasure.org", "code": unit}
        if i % 5 == 0:
            obs["interpretation"] = [HIGH]
    entries.append({"fullUrl": "urn:uuid:o%d" % i, "resource": obs})
json.dump({"resourceType": "Bundle", "type": "collection", "id": "bench-%d" % N,
           "entry": entries}, sys.stdout)
