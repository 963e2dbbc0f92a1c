"""The ``reg`` schema: composite natural keys, a multi-column FK inside a natural key, a
self-reference, a nullable two-table cycle, an identity ALWAYS surrogate, quoted
mixed-case names and an unmapped table. Shared by the runbook and check suites.
"""

from __future__ import annotations

# Composite natural keys, a multi-column FK inside a natural key, a self-reference, a
# two-table cycle that is nullable but not deferrable (second pass), an identity ALWAYS
# surrogate, a quoted mixed-case table and column, and an unmapped table.
REG_SCHEMA = """
CREATE SCHEMA reg;
CREATE TABLE reg.party (
    id serial PRIMARY KEY, country char(2) NOT NULL, code text NOT NULL, name text NOT NULL,
    UNIQUE (country, code));
CREATE TABLE reg."Contract" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    party_country char(2) NOT NULL, party_code text NOT NULL, "Number" text NOT NULL,
    amount numeric(12, 2), parent_id bigint REFERENCES reg."Contract" (id),
    CONSTRAINT contract_party_fk FOREIGN KEY (party_country, party_code)
        REFERENCES reg.party (country, code),
    UNIQUE (party_country, party_code, "Number"));
CREATE TABLE reg.team (id serial PRIMARY KEY, name text NOT NULL UNIQUE, lead_id integer);
CREATE TABLE reg.member (
    id serial PRIMARY KEY, team_id integer NOT NULL REFERENCES reg.team (id),
    login text NOT NULL, UNIQUE (team_id, login));
ALTER TABLE reg.team ADD CONSTRAINT team_lead_fk FOREIGN KEY (lead_id) REFERENCES reg.member (id);
CREATE TABLE reg.audit_log (id serial PRIMARY KEY, note text);
"""

REG_MAPPING = """
version: 1
tables:
  reg.party: {natural_key: [country, code]}
  reg."Contract": {natural_key: [party_country, party_code, Number]}
  reg.team: {natural_key: [name]}
  reg.member: {natural_key: [team_id, login]}
"""

REG_SOURCE_DATA = """
INSERT INTO reg.party (country, code, name) VALUES ('FR', 'A1', 'Alpha'), ('DE', 'B2', 'Beta'),
    ('FR', 'C3', 'Gamma');
-- the child gets the lower id: the self-reference points forward in id order
INSERT INTO reg."Contract" (party_country, party_code, "Number", amount) VALUES
    ('FR', 'A1', 'K-2', 20.50), ('FR', 'A1', 'K-1', 10.00), ('DE', 'B2', 'K-1', NULL),
    ('FR', 'C3', 'Z''9', 1.25);
UPDATE reg."Contract" SET parent_id = (SELECT id FROM reg."Contract" WHERE "Number" = 'K-1'
    AND party_country = 'FR') WHERE "Number" = 'K-2';
UPDATE reg."Contract" SET parent_id = (SELECT id FROM reg."Contract" WHERE "Number" = 'K-2')
    WHERE "Number" = 'Z''9';
INSERT INTO reg.team (name) VALUES ('red'), ('blue');
INSERT INTO reg.member (team_id, login) SELECT t.id, l FROM reg.team t,
    LATERAL (VALUES ('alice'), ('bob')) v(l) WHERE t.name = 'red';
INSERT INTO reg.member (team_id, login) SELECT id, 'carol' FROM reg.team WHERE name = 'blue';
UPDATE reg.team t SET lead_id = m.id FROM reg.member m
    WHERE m.team_id = t.id AND (t.name, m.login) IN (('red', 'alice'), ('blue', 'carol'));
INSERT INTO reg.audit_log (note) VALUES ('source only');
"""

# A "re-initialised" target: ids far ahead, some rows already there with other values.
REG_TARGET_DATA = """
SELECT setval('reg.party_id_seq', 9000);
ALTER TABLE reg."Contract" ALTER COLUMN id RESTART WITH 7000;
SELECT setval('reg.team_id_seq', 500);
SELECT setval('reg.member_id_seq', 800);
INSERT INTO reg.party (country, code, name) VALUES ('FR', 'A1', 'Old Alpha'), ('IT', 'X0', 'Local');
INSERT INTO reg."Contract" (party_country, party_code, "Number", amount)
    VALUES ('FR', 'A1', 'K-1', 10.0), ('IT', 'X0', 'L-1', 5);
INSERT INTO reg.team (name) VALUES ('red'), ('green');
INSERT INTO reg.member (team_id, login) SELECT id, 'alice' FROM reg.team WHERE name = 'red';
INSERT INTO reg.audit_log (note) VALUES ('target only');
"""
