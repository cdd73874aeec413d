// PolicyData: the patients' consents, relationships, delegations, proxies,
// break-glass grants and settings, indexed by patient, behind a shared mutex.
#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "policy/policy.h"

namespace medvault::policy {
namespace {

// Replaces the element with the same id, or appends.
template <typename T, typename IdOf>
void Upsert(std::vector<T>* items, T item, IdOf id_of) {
  for (T& existing : *items) {
    if (id_of(existing) == id_of(item)) {
      existing = std::move(item);
      return;
    }
  }
  items->push_back(std::move(item));
}

bool RelationshipActive(const Relationship& r, int64_t now_ms) {
  return r.started_at_ms <= now_ms && (r.ended_at_ms == 0 || now_ms < r.ended_at_ms);
}

bool DelegationActive(const Delegation& d, int64_t now_ms) {
  return d.created_at_ms <= now_ms && (d.revoked_at_ms == 0 || now_ms < d.revoked_at_ms) &&
         (d.expires_at_ms == 0 || now_ms < d.expires_at_ms);
}

}  // namespace

void PolicyData::UpsertConsent(Consent consent) {
  std::unique_lock lock(mu_);
  PatientEntry& e = patients_[consent.patient_id];
  e.settings.patient_id = consent.patient_id;
  Upsert(&e.consents, std::move(consent), [](const Consent& c) { return c.consent_id; });
}

void PolicyData::RemoveConsent(std::string_view patient_id, std::string_view consent_id) {
  std::unique_lock lock(mu_);
  const auto it = patients_.find(patient_id);
  if (it == patients_.end()) {
    return;
  }
  std::erase_if(it->second.consents, [&](const Consent& c) { return c.consent_id == consent_id; });
}

void PolicyData::UpsertRelationship(Relationship relationship) {
  std::unique_lock lock(mu_);
  PatientEntry& e = patients_[relationship.patient_id];
  e.settings.patient_id = relationship.patient_id;
  Upsert(&e.relationships, std::move(relationship),
         [](const Relationship& r) { return r.relationship_id; });
}

void PolicyData::UpsertDelegation(Delegation delegation) {
  std::unique_lock lock(mu_);
  PatientEntry& e = patients_[delegation.patient_id];
  e.settings.patient_id = delegation.patient_id;
  Upsert(&e.delegations, std::move(delegation),
         [](const Delegation& d) { return d.delegation_id; });
}

void PolicyData::UpsertProxy(ProxyLink proxy) {
  std::unique_lock lock(mu_);
  PatientEntry& e = patients_[proxy.patient_id];
  e.settings.patient_id = proxy.patient_id;
  Upsert(&e.proxies, std::move(proxy), [](const ProxyLink& p) { return p.proxy_id; });
}

void PolicyData::UpsertBreakGlass(BreakGlassGrant grant) {
  std::unique_lock lock(mu_);
  PatientEntry& e = patients_[grant.patient_id];
  e.settings.patient_id = grant.patient_id;
  Upsert(&e.break_glass, std::move(grant), [](const BreakGlassGrant& g) { return g.grant_id; });
}

void PolicyData::SetPatientSettings(PatientSettings settings) {
  std::unique_lock lock(mu_);
  PatientEntry& e = patients_[settings.patient_id];
  e.settings = std::move(settings);
}

void PolicyData::RemovePatient(std::string_view patient_id) {
  std::unique_lock lock(mu_);
  const auto it = patients_.find(patient_id);
  if (it != patients_.end()) {
    patients_.erase(it);
  }
}

void PolicyData::ReplacePatientFrom(PolicyData& from, std::string_view patient_id) {
  if (&from == this) {
    return;
  }
  std::scoped_lock lock(mu_, from.mu_);
  const auto source = from.patients_.find(patient_id);
  const auto target = patients_.find(patient_id);
  if (source == from.patients_.end()) {
    if (target != patients_.end()) {
      patients_.erase(target);
    }
  } else if (target != patients_.end()) {
    target->second = std::move(source->second);
  } else {
    patients_.emplace(std::string(patient_id), std::move(source->second));
  }
}

void PolicyData::ReplaceAllFrom(PolicyData& from) {
  if (&from == this) {
    return;
  }
  std::scoped_lock lock(mu_, from.mu_);
  patients_.swap(from.patients_);
  from.patients_.clear();
}

std::vector<Consent> PolicyData::ConsentsOf(std::string_view patient_id) const {
  std::shared_lock lock(mu_);
  const auto it = patients_.find(patient_id);
  return it == patients_.end() ? std::vector<Consent>{} : it->second.consents;
}

std::vector<Relationship> PolicyData::RelationshipsOf(std::string_view patient_id) const {
  std::shared_lock lock(mu_);
  const auto it = patients_.find(patient_id);
  return it == patients_.end() ? std::vector<Relationship>{} : it->second.relationships;
}

std::vector<Delegation> PolicyData::DelegationsOf(std::string_view patient_id) const {
  std::shared_lock lock(mu_);
  const auto it = patients_.find(patient_id);
  return it == patients_.end() ? std::vector<Delegation>{} : it->second.delegations;
}

std::vector<ProxyLink> PolicyData::ProxiesOf(std::string_view patient_id) const {
  std::shared_lock lock(mu_);
  const auto it = patients_.find(patient_id);
  return it == patients_.end() ? std::vector<ProxyLink>{} : it->second.proxies;
}

std::vector<BreakGlassGrant> PolicyData::BreakGlassOf(std::string_view patient_id) const {
  std::shared_lock lock(mu_);
  const auto it = patients_.find(patient_id);
  return it == patients_.end() ? std::vector<BreakGlassGrant>{} : it->second.break_glass;
}

std::vector<BreakGlassGrant> PolicyData::BreakGlassSince(int64_t since_ms) const {
  std::vector<BreakGlassGrant> out;
  {
    std::shared_lock lock(mu_);
    for (const auto& [patient, entry] : patients_) {
      for (const BreakGlassGrant& g : entry.break_glass) {
        if (g.started_at_ms >= since_ms) {
          out.push_back(g);
        }
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const BreakGlassGrant& a, const BreakGlassGrant& b) {
    return a.started_at_ms > b.started_at_ms;
  });
  return out;
}

PatientSettings PolicyData::SettingsOf(std::string_view patient_id) const {
  std::shared_lock lock(mu_);
  const auto it = patients_.find(patient_id);
  if (it == patients_.end()) {
    PatientSettings s;
    s.patient_id = std::string(patient_id);
    return s;
  }
  return it->second.settings;
}

std::vector<std::string> PolicyData::PatientsTreatedBy(std::string_view account_id,
                                                       int64_t now_ms) const {
  std::vector<std::string> out;
  std::shared_lock lock(mu_);
  for (const auto& item : patients_) {
    // Not a structured binding: clang 14 cannot capture those in lambdas.
    const std::string& patient_id = item.first;
    const PatientEntry& e = item.second;
    const auto active_for = [&](std::string_view account) {
      return std::any_of(
          e.relationships.begin(), e.relationships.end(), [&](const Relationship& r) {
            return r.clinician_account_id == account && RelationshipActive(r, now_ms);
          });
    };
    bool treated = active_for(account_id);
    if (!treated && e.settings.allow_delegation) {
      treated = std::any_of(e.delegations.begin(), e.delegations.end(), [&](const Delegation& d) {
        return d.to_account_id == account_id && DelegationActive(d, now_ms) &&
               active_for(d.from_account_id);
      });
    }
    if (treated) {
      out.push_back(patient_id);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> PolicyData::PatientsProxiedBy(std::string_view account_id,
                                                       int64_t now_ms) const {
  std::vector<std::string> out;
  std::shared_lock lock(mu_);
  for (const auto& [patient_id, e] : patients_) {
    const bool proxied = std::any_of(e.proxies.begin(), e.proxies.end(), [&](const ProxyLink& p) {
      return p.proxy_account_id == account_id &&
             (p.revoked_at_ms == 0 || now_ms < p.revoked_at_ms) &&
             (p.expires_at_ms == 0 || now_ms < p.expires_at_ms);
    });
    if (proxied) {
      out.push_back(patient_id);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace medvault::policy
