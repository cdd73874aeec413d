// What the portal knows about the signed-in account (GET /api/v1/me), in
// memory only, plus the segment vocabulary. Cleared at sign-out.
import { api } from './api.js';

export const state = {
  me: null,
  segmentTypes: null,
};

// Display names of accounts learnt from answers that carry them (the access
// history), for the accounts a patient or clinician cannot look up.
export const knownNames = new Map();

export const CLINICAL_ROLES = ['doctor', 'department-head', 'nurse', 'pharmacist', 'researcher'];
export const BREAK_GLASS_ROLES = ['doctor', 'department-head', 'nurse'];
export const WRITER_ROLES = ['doctor', 'department-head'];
export const ALL_ROLES = ['patient', 'family-proxy', 'doctor', 'department-head', 'nurse', 'pharmacist',
  'researcher', 'institution-admin', 'privacy-officer', 'auditor', 'operator'];
export const PURPOSES = ['treatment', 'emergency', 'patient-request', 'family-care', 'payment',
  'operations', 'research', 'audit'];

export function hasRole(...roles) {
  const mine = state.me ? state.me.roles || [] : [];
  return roles.some((r) => mine.includes(r));
}

export function resetState() {
  state.me = null;
  state.segmentTypes = null;
  knownNames.clear();
}

// Top-level segments (GET /api/v1/segment-types), loaded once per session.
export async function segmentTypes() {
  if (!state.segmentTypes) {
    const { data } = await api('GET', '/api/v1/segment-types');
    state.segmentTypes = data.segment_types || [];
  }
  return state.segmentTypes;
}
