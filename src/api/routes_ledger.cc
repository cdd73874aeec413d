// The ledger over HTTP: signed checkpoints, proofs and cosignatures (public,
// so that anyone can verify the log without trusting this server), the
// entries for auditors, and a patient's own access history.

#include <map>
#include <optional>

#include "api/http_internal.h"
#include "api/json_input.h"
#include "common/bytes.h"
#include "common/ids.h"
#include "common/log.h"

namespace medvault::api::internal {
namespace {

using nlohmann::json;
using policy::Action;

constexpr int64_t kCheckpointEveryMs = 1000;

std::string Hex(const ledger::Hash& h) { return ToHex(ByteView(h.data(), h.size())); }

json EntryJson(const ledger::LedgerRecord& r) {
  const ledger::Entry& e = r.entry;
  return {{"seq", r.seq},
          {"leaf_hash", Hex(r.leaf_hash)},
          {"time", FormatRfc3339Millis(e.time_ms)},
          {"request_id", e.request_id},
          {"actor", e.actor},
          {"action", e.action},
          {"effect", e.effect},
          {"reasons", e.reasons},
          {"obligations", e.obligations},
          {"purpose", e.purpose},
          {"resource", {{"kind", e.resource.kind}, {"path", e.resource.path}}},
          {"patient_ref", e.patient_ref},
          {"details", e.details},
          {"entry_base64", ToBase64Url(r.bytes)}};
}

}  // namespace

void RegisterLedgerRoutes(RouteTable& table) {
  table.Route(
      "GET", "/api/v1/ledger/checkpoint", "/api/v1/ledger/checkpoint", RouteAccess::kPublic,
      [](Call& call) -> Status {
        MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
        const Services& s = call.services;
        MV_ASSIGN_OR_RETURN(
            ledger::CheckpointRecord cp,
            s.ledger->FreshCheckpoint(*s.ledger_signer, s.ledger_origin, kCheckpointEveryMs));
        // The note with every stored cosignature appended as further
        // signature lines (C2SP tlog-cosignature).
        std::string note = cp.note;
        MV_ASSIGN_OR_RETURN(auto cosigs, s.ledger->WitnessedBy(cp.size));
        for (const auto& c : cosigs) {
          note += c.line;
        }
        const bool witnessed =
            !s.witnesses.empty() && s.ledger->IsWitnessed(cp.size, s.witness_quorum, s.witnesses);
        call.res.set_header("X-Ledger-Size", std::to_string(cp.size));
        call.res.set_header("X-Ledger-Witnessed", witnessed ? "true" : "false");
        call.res.set_header("X-Ledger-Witness-Quorum", std::to_string(s.witness_quorum) + " of " +
                                                           std::to_string(s.witnesses.size()));
        call.res.status = 200;
        call.res.set_content(note, "text/plain; charset=utf-8");
        return Status::Ok();
      });

  table.Route("GET", "/api/v1/ledger/proof/inclusion", "/api/v1/ledger/proof/inclusion",
              RouteAccess::kPublic, [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {"index", "size"}));
                MV_ASSIGN_OR_RETURN(uint64_t index, UintParam(call.req, "index", true, 0));
                MV_ASSIGN_OR_RETURN(uint64_t size, UintParam(call.req, "size", true, 0));
                MV_ASSIGN_OR_RETURN(auto proof, call.services.ledger->InclusionProof(index, size));
                call.res.status = 200;
                call.res.set_content(ledger::FormatProof(proof), "text/plain");
                return Status::Ok();
              });

  table.Route("GET", "/api/v1/ledger/proof/consistency", "/api/v1/ledger/proof/consistency",
              RouteAccess::kPublic, [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {"old", "new"}));
                MV_ASSIGN_OR_RETURN(uint64_t old_size, UintParam(call.req, "old", true, 0));
                MV_ASSIGN_OR_RETURN(uint64_t new_size, UintParam(call.req, "new", true, 0));
                MV_ASSIGN_OR_RETURN(auto proof,
                                    call.services.ledger->ConsistencyProof(old_size, new_size));
                call.res.status = 200;
                call.res.set_content(ledger::FormatProof(proof), "text/plain");
                return Status::Ok();
              });

  // A witness hands in its cosignature; only configured witnesses count.
  table.RouteWithBody(
      "POST", "/api/v1/ledger/cosignatures", "/api/v1/ledger/cosignatures", RouteAccess::kPublic,
      [](Call& call, const std::string& body) -> Status {
        MV_ASSIGN_OR_RETURN(json j, ParseJsonBody(body));
        MV_RETURN_IF_ERROR(CheckObjectFields(j, {"size", "cosignature"}, {"size", "cosignature"}));
        MV_ASSIGN_OR_RETURN(auto size, GetIntField(j, "size", 0, INT64_MAX));
        MV_ASSIGN_OR_RETURN(std::string line, GetStringField(j, "cosignature", true, 1024));
        Status last = Status::PermissionDenied("not signed by a configured witness");
        for (const ledger::VerifierKey& w : call.services.witnesses) {
          Status st = call.services.ledger->AddCosignature(static_cast<uint64_t>(*size), line, w);
          if (st.ok()) {
            Log(LogLevel::kInfo, "ledger.cosigned", {{"size", static_cast<int64_t>(*size)}});
            call.Json(201, json{{"accepted", true}, {"size", *size}});
            return Status::Ok();
          }
          if (st.code() == StatusCode::kDataLoss) {
            // A configured witness's name and key id with a signature that
            // does not verify: a bad request, not damage to stored data.
            last = Status::PermissionDenied("the cosignature does not verify");
          } else if (st.code() != StatusCode::kFailedPrecondition) {
            last = st;  // malformed line, unknown checkpoint size
          }
        }
        return last;
      });

  table.Route("GET", "/api/v1/ledger/entries", "/api/v1/ledger/entries", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {"from", "limit"}));
                MV_RETURN_IF_ERROR(call.Decide(Action::kReadAudit, {}));
                MV_ASSIGN_OR_RETURN(uint64_t from, UintParam(call.req, "from", false, 0));
                MV_ASSIGN_OR_RETURN(uint64_t limit, UintParam(call.req, "limit", false, 100));
                limit = std::min<uint64_t>(std::max<uint64_t>(limit, 1), 1000);
                MV_RETURN_IF_ERROR(call.services.ledger->Sync());
                const uint64_t size = call.services.ledger->Size();
                json arr = json::array();
                for (uint64_t seq = from; seq < size && seq < from + limit; ++seq) {
                  MV_ASSIGN_OR_RETURN(ledger::LedgerRecord r, call.services.ledger->GetEntry(seq));
                  arr.push_back(EntryJson(r));
                }
                call.Json(200, json{{"size", size}, {"entries", arr}});
                return Status::Ok();
              });

  // The patient's own access history: who, when, what, why.
  table.Route(
      "GET", "/api/v1/patients/" + std::string(kIdRe) + "/access-history",
      "/api/v1/patients/{id}/access-history", RouteAccess::kData, [](Call& call) -> Status {
        MV_RETURN_IF_ERROR(CheckQuery(call.req, {"after", "limit", "epoch"}));
        const std::string id = call.req.matches[1].str();
        policy::Resource r;
        r.patient_id = id;
        MV_RETURN_IF_ERROR(call.Decide(Action::kReadAccessHistory, r));
        std::optional<uint64_t> after;
        if (call.req.has_param("after")) {
          MV_ASSIGN_OR_RETURN(uint64_t a, UintParam(call.req, "after", true, 0));
          after = a;
        }
        MV_ASSIGN_OR_RETURN(uint64_t limit, UintParam(call.req, "limit", false, 200));
        limit = std::min<uint64_t>(std::max<uint64_t>(limit, 1), 1000);
        // After ledger damage the history before it is in an archived
        // epoch (docs/ledger.md): ?epoch=K reads it.
        const uint64_t current = call.services.ledger->Epoch();
        MV_ASSIGN_OR_RETURN(uint64_t epoch, UintParam(call.req, "epoch", false, current));
        if (epoch > current) {
          return Status::InvalidArgument("epoch is beyond the ledger's current epoch");
        }
        MV_RETURN_IF_ERROR(call.services.ledger->Sync());
        std::vector<ledger::LedgerRecord> records;
        if (epoch == current) {
          MV_ASSIGN_OR_RETURN(records, call.services.ledger->EntriesForPatientRef(
                                           call.services.patient_ref(id), after, limit));
        } else {
          MV_ASSIGN_OR_RETURN(records, call.services.ledger->ArchivedEntriesForPatientRef(
                                           epoch, call.services.patient_ref(id), after, limit));
        }
        json arr = json::array();
        // A page holds many entries of few actors: look each up once.
        std::map<std::string, std::optional<auth::Account>> actors;
        for (const auto& rec : records) {
          const ledger::Entry& e = rec.entry;
          json item = {{"seq", rec.seq},
                       {"time", FormatRfc3339Millis(e.time_ms)},
                       {"actor", e.actor},
                       {"action", e.action},
                       {"effect", e.effect},
                       {"reasons", e.reasons},
                       {"purpose", e.purpose},
                       {"what", e.resource.kind},
                       {"path", e.resource.path},
                       {"break_glass", e.action == ledger::kActionBreakGlass ||
                                           (!e.reasons.empty() && e.reasons[0] == "break-glass")}};
          auto [who, fresh] = actors.try_emplace(e.actor);
          if (fresh) {
            auto account = call.services.accounts->GetAccount(e.actor);
            if (account.ok()) {
              who->second = std::move(*account);
            }
          }
          if (who->second) {
            item["actor_name"] = who->second->display_name;
            item["actor_roles"] = who->second->roles;
          }
          arr.push_back(std::move(item));
        }
        call.Json(200, json{{"patient_id", id},
                            {"epoch", epoch},
                            {"current_epoch", current},
                            {"history", arr}});
        return Status::Ok();
      });

  // The ledger's epochs and damage, for auditors and privacy officers.
  table.Route("GET", "/api/v1/ledger/status", "/api/v1/ledger/status", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                MV_RETURN_IF_ERROR(call.Decide(Action::kReadAudit, {}));
                json body = LedgerHealthJson(*call.services.ledger, true);
                body["size"] = call.services.ledger->Size();
                body["origin"] = call.services.ledger_origin;
                call.Json(200, body);
                return Status::Ok();
              });

  table.Route("GET", "/api/v1/integrity/report", "/api/v1/integrity/report", RouteAccess::kData,
              [](Call& call) -> Status {
                MV_RETURN_IF_ERROR(CheckQuery(call.req, {}));
                MV_RETURN_IF_ERROR(call.Decide(Action::kReadAudit, {}));
                const std::string report =
                    call.services.scrub_report ? call.services.scrub_report() : "";
                if (report.empty()) {
                  return Status::NotFound("no integrity scrub has finished yet");
                }
                call.res.status = 200;
                call.res.set_content(report, "application/json");
                return Status::Ok();
              });
}

json LedgerHealthJson(ledger::SqliteLedger& ledger, bool who) {
  json out{{"epoch", ledger.Epoch()}, {"damaged", false}, {"unacknowledged", 0}};
  auto epochs = ledger.Epochs();
  if (!epochs.ok()) {
    out["error"] = "cannot read the ledger epochs";
    return out;
  }
  json damage = json::array();
  int unacknowledged = 0;
  for (const ledger::EpochRecord& e : *epochs) {
    json d{{"damaged_epoch", e.epoch - 1},
           {"continued_in_epoch", e.epoch},
           {"archived_entries", e.archived_entries},
           {"detected_at", FormatRfc3339Millis(e.started_at_ms)},
           {"damage", e.damage},
           {"acknowledged", e.acknowledged_at_ms != 0}};
    if (e.first_bad_entry.has_value()) {
      d["first_bad_entry"] = *e.first_bad_entry;
    }
    if (e.acknowledged_at_ms != 0) {
      d["acknowledged_at"] = FormatRfc3339Millis(e.acknowledged_at_ms);
      if (who) {
        d["acknowledged_by"] = e.acknowledged_by;
        d["acknowledgement"] = e.acknowledgement;
      }
    } else {
      ++unacknowledged;
    }
    damage.push_back(std::move(d));
  }
  out["damaged"] = !damage.empty();
  out["unacknowledged"] = unacknowledged;
  out["damage"] = std::move(damage);
  return out;
}

}  // namespace medvault::api::internal
