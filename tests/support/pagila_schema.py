"""An excerpt of Pagila's published schema (pagila-schema.sql), as pg_dump wrote it: every
id column takes ``DEFAULT nextval('public.x_seq'::regclass)`` from a sequence no column
owns (no OWNED BY), a domain, an enum, an array column, a tsvector kept by a trigger,
``last_updated`` triggers, and ``payment`` partitioned by range with its foreign keys
declared on the partitions. Left out: store, staff, rental, inventory and the views (so
customer.store_id, payment.staff_id and payment.rental_id are plain integers here)."""

from __future__ import annotations

SCHEMA = """
CREATE TYPE public.mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17');
CREATE DOMAIN public.year AS integer CONSTRAINT year_check CHECK (((VALUE >= 1901) AND (VALUE <= 2155)));

CREATE FUNCTION public.last_updated() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.last_update = CURRENT_TIMESTAMP;
    RETURN NEW;
END $$;

CREATE SEQUENCE public.actor_actor_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE TABLE public.actor (
    actor_id integer DEFAULT nextval('public.actor_actor_id_seq'::regclass) NOT NULL,
    first_name text NOT NULL,
    last_name text NOT NULL,
    last_update timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.category_category_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE TABLE public.category (
    category_id integer DEFAULT nextval('public.category_category_id_seq'::regclass) NOT NULL,
    name text NOT NULL,
    last_update timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.language_language_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE TABLE public.language (
    language_id integer DEFAULT nextval('public.language_language_id_seq'::regclass) NOT NULL,
    name character(20) NOT NULL,
    last_update timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.film_film_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE TABLE public.film (
    film_id integer DEFAULT nextval('public.film_film_id_seq'::regclass) NOT NULL,
    title text NOT NULL,
    description text,
    release_year public.year,
    language_id integer NOT NULL,
    original_language_id integer,
    rental_duration smallint DEFAULT 3 NOT NULL,
    rental_rate numeric(4,2) DEFAULT 4.99 NOT NULL,
    length smallint,
    replacement_cost numeric(5,2) DEFAULT 19.99 NOT NULL,
    rating public.mpaa_rating DEFAULT 'G'::public.mpaa_rating,
    last_update timestamp with time zone DEFAULT now() NOT NULL,
    special_features text[],
    fulltext tsvector NOT NULL
);

CREATE TABLE public.film_actor (
    actor_id integer NOT NULL,
    film_id integer NOT NULL,
    last_update timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE public.film_category (
    film_id integer NOT NULL,
    category_id integer NOT NULL,
    last_update timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.country_country_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE TABLE public.country (
    country_id integer DEFAULT nextval('public.country_country_id_seq'::regclass) NOT NULL,
    country text NOT NULL,
    last_update timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.city_city_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE TABLE public.city (
    city_id integer DEFAULT nextval('public.city_city_id_seq'::regclass) NOT NULL,
    city text NOT NULL,
    country_id integer NOT NULL,
    last_update timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.address_address_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE TABLE public.address (
    address_id integer DEFAULT nextval('public.address_address_id_seq'::regclass) NOT NULL,
    address text NOT NULL,
    address2 text,
    district text NOT NULL,
    city_id integer NOT NULL,
    postal_code text,
    phone text NOT NULL,
    last_update timestamp with time zone DEFAULT now() NOT NULL
);

CREATE SEQUENCE public.customer_customer_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE TABLE public.customer (
    customer_id integer DEFAULT nextval('public.customer_customer_id_seq'::regclass) NOT NULL,
    store_id integer NOT NULL,
    first_name text NOT NULL,
    last_name text NOT NULL,
    email text,
    address_id integer NOT NULL,
    activebool boolean DEFAULT true NOT NULL,
    create_date date DEFAULT CURRENT_DATE NOT NULL,
    last_update timestamp with time zone DEFAULT now(),
    active integer
);

CREATE SEQUENCE public.payment_payment_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE TABLE public.payment (
    payment_id integer DEFAULT nextval('public.payment_payment_id_seq'::regclass) NOT NULL,
    customer_id integer NOT NULL,
    staff_id integer NOT NULL,
    rental_id integer NOT NULL,
    amount numeric(5,2) NOT NULL,
    payment_date timestamp with time zone NOT NULL
)
PARTITION BY RANGE (payment_date);
CREATE TABLE public.payment_p2022_01 (
    payment_id integer DEFAULT nextval('public.payment_payment_id_seq'::regclass) NOT NULL,
    customer_id integer NOT NULL,
    staff_id integer NOT NULL,
    rental_id integer NOT NULL,
    amount numeric(5,2) NOT NULL,
    payment_date timestamp with time zone NOT NULL
);
CREATE TABLE public.payment_p2022_02 (
    payment_id integer DEFAULT nextval('public.payment_payment_id_seq'::regclass) NOT NULL,
    customer_id integer NOT NULL,
    staff_id integer NOT NULL,
    rental_id integer NOT NULL,
    amount numeric(5,2) NOT NULL,
    payment_date timestamp with time zone NOT NULL
);
ALTER TABLE ONLY public.payment ATTACH PARTITION public.payment_p2022_01
    FOR VALUES FROM ('2022-01-01 00:00:00+00') TO ('2022-02-01 00:00:00+00');
ALTER TABLE ONLY public.payment ATTACH PARTITION public.payment_p2022_02
    FOR VALUES FROM ('2022-02-01 00:00:00+00') TO ('2022-03-01 00:00:00+00');

ALTER TABLE ONLY public.actor ADD CONSTRAINT actor_pkey PRIMARY KEY (actor_id);
ALTER TABLE ONLY public.address ADD CONSTRAINT address_pkey PRIMARY KEY (address_id);
ALTER TABLE ONLY public.category ADD CONSTRAINT category_pkey PRIMARY KEY (category_id);
ALTER TABLE ONLY public.city ADD CONSTRAINT city_pkey PRIMARY KEY (city_id);
ALTER TABLE ONLY public.country ADD CONSTRAINT country_pkey PRIMARY KEY (country_id);
ALTER TABLE ONLY public.customer ADD CONSTRAINT customer_pkey PRIMARY KEY (customer_id);
ALTER TABLE ONLY public.film_actor ADD CONSTRAINT film_actor_pkey PRIMARY KEY (actor_id, film_id);
ALTER TABLE ONLY public.film_category ADD CONSTRAINT film_category_pkey PRIMARY KEY (film_id, category_id);
ALTER TABLE ONLY public.film ADD CONSTRAINT film_pkey PRIMARY KEY (film_id);
ALTER TABLE ONLY public.language ADD CONSTRAINT language_pkey PRIMARY KEY (language_id);
ALTER TABLE ONLY public.payment ADD CONSTRAINT payment_pkey PRIMARY KEY (payment_date, payment_id);
ALTER TABLE ONLY public.payment_p2022_01 ADD CONSTRAINT payment_p2022_01_pkey PRIMARY KEY (payment_date, payment_id);
ALTER TABLE ONLY public.payment_p2022_02 ADD CONSTRAINT payment_p2022_02_pkey PRIMARY KEY (payment_date, payment_id);

CREATE INDEX film_fulltext_idx ON public.film USING gist (fulltext);
CREATE INDEX idx_actor_last_name ON public.actor USING btree (last_name);
CREATE INDEX idx_fk_language_id ON public.film USING btree (language_id);
CREATE INDEX idx_title ON public.film USING btree (title);
CREATE UNIQUE INDEX idx_unq_category_name ON public.category USING btree (name);
CREATE UNIQUE INDEX idx_unq_language_name ON public.language USING btree (name);
CREATE UNIQUE INDEX idx_unq_country ON public.country USING btree (country);
CREATE UNIQUE INDEX idx_unq_city ON public.city USING btree (city, country_id);
CREATE UNIQUE INDEX idx_unq_film_title ON public.film USING btree (title);

CREATE TRIGGER film_fulltext_trigger BEFORE INSERT OR UPDATE ON public.film FOR EACH ROW
    EXECUTE FUNCTION tsvector_update_trigger('fulltext', 'pg_catalog.english', 'title', 'description');
CREATE TRIGGER last_updated BEFORE UPDATE ON public.actor FOR EACH ROW EXECUTE FUNCTION public.last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON public.address FOR EACH ROW EXECUTE FUNCTION public.last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON public.category FOR EACH ROW EXECUTE FUNCTION public.last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON public.city FOR EACH ROW EXECUTE FUNCTION public.last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON public.country FOR EACH ROW EXECUTE FUNCTION public.last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON public.customer FOR EACH ROW EXECUTE FUNCTION public.last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON public.film FOR EACH ROW EXECUTE FUNCTION public.last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON public.film_actor FOR EACH ROW EXECUTE FUNCTION public.last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON public.film_category FOR EACH ROW EXECUTE FUNCTION public.last_updated();
CREATE TRIGGER last_updated BEFORE UPDATE ON public.language FOR EACH ROW EXECUTE FUNCTION public.last_updated();

ALTER TABLE ONLY public.address ADD CONSTRAINT address_city_id_fkey FOREIGN KEY (city_id)
    REFERENCES public.city(city_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE ONLY public.city ADD CONSTRAINT city_country_id_fkey FOREIGN KEY (country_id)
    REFERENCES public.country(country_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE ONLY public.customer ADD CONSTRAINT customer_address_id_fkey FOREIGN KEY (address_id)
    REFERENCES public.address(address_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE ONLY public.film_actor ADD CONSTRAINT film_actor_actor_id_fkey FOREIGN KEY (actor_id)
    REFERENCES public.actor(actor_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE ONLY public.film_actor ADD CONSTRAINT film_actor_film_id_fkey FOREIGN KEY (film_id)
    REFERENCES public.film(film_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE ONLY public.film_category ADD CONSTRAINT film_category_category_id_fkey FOREIGN KEY (category_id)
    REFERENCES public.category(category_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE ONLY public.film_category ADD CONSTRAINT film_category_film_id_fkey FOREIGN KEY (film_id)
    REFERENCES public.film(film_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE ONLY public.film ADD CONSTRAINT film_language_id_fkey FOREIGN KEY (language_id)
    REFERENCES public.language(language_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE ONLY public.film ADD CONSTRAINT film_original_language_id_fkey FOREIGN KEY (original_language_id)
    REFERENCES public.language(language_id) ON UPDATE CASCADE ON DELETE RESTRICT;
ALTER TABLE ONLY public.payment_p2022_01 ADD CONSTRAINT payment_p2022_01_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES public.customer(customer_id);
ALTER TABLE ONLY public.payment_p2022_02 ADD CONSTRAINT payment_p2022_02_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES public.customer(customer_id);
"""

# Rows with ids that have gaps, and each sequence left where Pagila's data leaves it.
DATA = """
INSERT INTO public.language (language_id, name) VALUES (1, 'English'), (2, 'Italian'), (3, 'Japanese');
INSERT INTO public.category (category_id, name) VALUES (1, 'Action'), (2, 'Animation'), (5, 'Comedy');
INSERT INTO public.actor (actor_id, first_name, last_name)
    SELECT i, 'FIRST' || i, CASE WHEN i % 50 = 0 THEN 'DAVIS' ELSE 'LAST' || i END
    FROM generate_series(1, 200, 3) AS i;
INSERT INTO public.film (film_id, title, description, release_year, language_id, length, rating,
                         special_features, fulltext)
    SELECT i, 'FILM ' || i, 'A story of ' || i, 2006, 1 + i % 3, 60 + i,
           (ARRAY['G', 'PG', 'R']::public.mpaa_rating[])[1 + i % 3], ARRAY['Trailers'], ''
    FROM generate_series(1, 90, 2) AS i;
INSERT INTO public.film_actor (actor_id, film_id)
    SELECT a.actor_id, f.film_id FROM public.actor a JOIN public.film f ON (a.actor_id + f.film_id) % 7 = 0;
INSERT INTO public.film_category (film_id, category_id)
    SELECT film_id, (ARRAY[1, 2, 5])[1 + film_id % 3] FROM public.film;
INSERT INTO public.country (country_id, country) VALUES (1, 'Afghanistan'), (2, 'Algeria'), (9, 'Austria');
INSERT INTO public.city (city_id, city, country_id) VALUES (1, 'A Corua', 9), (2, 'Abha', 2), (4, 'Kabul', 1);
INSERT INTO public.address (address_id, address, district, city_id, phone)
    SELECT i, i || ' Main St', 'D', (ARRAY[1, 2, 4])[1 + i % 3], '555' FROM generate_series(1, 40, 2) AS i;
INSERT INTO public.customer (customer_id, store_id, first_name, last_name, address_id, create_date)
    SELECT i, 1, 'C' || i, 'L' || i, (SELECT max(address_id) FROM public.address WHERE address_id <= i + 1),
           DATE '2022-01-01' + i
    FROM generate_series(1, 30, 3) AS i;
INSERT INTO public.payment (payment_id, customer_id, staff_id, rental_id, amount, payment_date)
    SELECT 16000 + i, (SELECT max(customer_id) FROM public.customer), 1, i, 2.99,
           TIMESTAMPTZ '2022-01-20 10:00:00+00' + i * INTERVAL '1 day'
    FROM generate_series(1, 25) AS i;
SELECT setval('public.actor_actor_id_seq', 200), setval('public.film_film_id_seq', 90),
       setval('public.customer_customer_id_seq', 30), setval('public.payment_payment_id_seq', 16025),
       setval('public.address_address_id_seq', 40), setval('public.language_language_id_seq', 3),
       setval('public.category_category_id_seq', 5), setval('public.country_country_id_seq', 9),
       setval('public.city_city_id_seq', 4);
"""

# A mapping as a new user would write it: natural names where Pagila has unique ones,
# the ids themselves (kept as keys) where it has none (two actors may share a name).
MAPPING = """
version: 1
tables:
  public.language: {natural_key: [name]}
  public.category: {natural_key: [name]}
  public.film: {natural_key: [title]}
  public.actor: {natural_key: [actor_id]}
  public.film_actor: {natural_key: [actor_id, film_id]}
  public.film_category: {natural_key: [film_id, category_id]}
  public.country: {natural_key: [country]}
  public.city: {natural_key: [city, country_id]}
  public.address: {natural_key: [address_id]}
  public.customer: {natural_key: [customer_id]}
  public.payment: {natural_key: [payment_id]}
"""

# tables keyed by their own id: (table, id column, sequence)
KEPT_IDS = (
    ("public.actor", "actor_id", "public.actor_actor_id_seq"),
    ("public.address", "address_id", "public.address_address_id_seq"),
    ("public.customer", "customer_id", "public.customer_customer_id_seq"),
    ("public.payment", "payment_id", "public.payment_payment_id_seq"),
)
