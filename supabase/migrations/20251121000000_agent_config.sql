-- livekit-fallback: tables the resolver reads.
--
-- Column-compatible with the original agent-configuration schema: one theme per
-- vertical, one prompt per conversation node with versioned content, and one
-- catalogue table per platform and model kind with at most one active row.
-- Idempotent: safe to apply to a project that already has these tables.

create table if not exists public.theme_prompts (
    id                 uuid primary key default gen_random_uuid(),
    vertical           text not null unique,
    content            text,
    content_structured jsonb,
    is_active          boolean not null default true,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    constraint theme_prompts_has_content
        check (content is not null or content_structured is not null)
);

create table if not exists public.prompts (
    id              uuid primary key default gen_random_uuid(),
    name            text not null,
    vertical        text not null,
    node_name       text not null,
    current_version integer,
    is_active       boolean not null default true,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now()
);

create index if not exists prompts_vertical_node_idx
    on public.prompts (vertical, node_name);

create table if not exists public.prompt_versions (
    id             uuid primary key default gen_random_uuid(),
    prompt_id      uuid not null references public.prompts (id) on delete cascade,
    version_number integer not null,
    content        jsonb not null,
    is_active      boolean not null default false,
    is_draft       boolean not null default false,
    created_by     text,
    change_summary text,
    created_at     timestamptz not null default now(),
    unique (prompt_id, version_number)
);

-- The active node config of a prompt is its highest active, non-draft version.
-- One row per active prompt, so two active prompts for the same node show up
-- as two rows (the resolver reports that as an error instead of guessing).
create or replace view public.active_node_prompts
with (security_invoker = true) as
select distinct on (p.id)
    p.id             as prompt_id,
    p.vertical,
    p.node_name,
    v.version_number,
    v.content,
    v.created_at     as version_created_at
from public.prompts p
join public.prompt_versions v on v.prompt_id = p.id
where p.is_active and v.is_active and not v.is_draft
order by p.id, v.version_number desc;

create or replace function public.get_node_prompt(p_vertical text, p_node_name text)
returns jsonb
language sql stable
as $$
    select content from public.active_node_prompts
    where vertical = p_vertical and node_name = p_node_name
    order by version_number desc
    limit 1
$$;

-- Model catalogues. At most one active row per table (partial unique index).
-- On an existing project that already has two active rows in a table, creating
-- the index fails: deactivate all but one first (the resolver reports such a
-- table as invalid content and falls back until then).

create table if not exists public.livekit_available_stt_models (
    id            uuid primary key default gen_random_uuid(),
    provider      text not null,
    model_name    text not null,
    model_id_full text not null unique,
    display_name  text,
    is_available  boolean not null default true,
    is_active     boolean not null default false,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create unique index if not exists livekit_available_stt_models_one_active
    on public.livekit_available_stt_models (is_active) where is_active;

create table if not exists public.livekit_available_llm_models (
    id            uuid primary key default gen_random_uuid(),
    provider      text not null,
    model_name    text not null,
    model_id_full text not null unique,
    display_name  text,
    is_available  boolean not null default true,
    is_active     boolean not null default false,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create unique index if not exists livekit_available_llm_models_one_active
    on public.livekit_available_llm_models (is_active) where is_active;

create table if not exists public.livekit_available_voices (
    id            uuid primary key default gen_random_uuid(),
    provider      text not null,
    voice_name    text not null,
    voice_id      text not null,
    voice_id_full text not null unique,
    model         text,
    is_custom     boolean not null default false,
    is_available  boolean not null default true,
    is_active     boolean not null default false,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create unique index if not exists livekit_available_voices_one_active
    on public.livekit_available_voices (is_active) where is_active;

create table if not exists public.signalwire_available_llm_models (
    id            uuid primary key default gen_random_uuid(),
    provider      text,
    model_name    text,
    model_id_full text not null unique,
    display_name  text,
    is_available  boolean not null default true,
    is_active     boolean not null default false,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create unique index if not exists signalwire_available_llm_models_one_active
    on public.signalwire_available_llm_models (is_active) where is_active;

create table if not exists public.signalwire_available_stt_models (
    id            uuid primary key default gen_random_uuid(),
    provider      text,
    model_name    text,
    model_id_full text not null unique,
    display_name  text,
    is_available  boolean not null default true,
    is_active     boolean not null default false,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create unique index if not exists signalwire_available_stt_models_one_active
    on public.signalwire_available_stt_models (is_active) where is_active;

create table if not exists public.signalwire_available_voices (
    id            uuid primary key default gen_random_uuid(),
    provider      text,
    voice_name    text,
    voice_id_full text not null unique,
    display_name  text,
    is_available  boolean not null default true,
    is_active     boolean not null default false,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now()
);
create unique index if not exists signalwire_available_voices_one_active
    on public.signalwire_available_voices (is_active) where is_active;

-- Row level security. Agent configuration is read with the service key, which
-- bypasses RLS; with RLS on and no policies, the public anon key can neither
-- read nor rewrite prompts and model choices. To let another role read them,
-- add a policy deliberately, e.g.:
--   create policy "agents read themes" on public.theme_prompts
--       for select to authenticated using (true);
alter table public.theme_prompts enable row level security;
alter table public.prompts enable row level security;
alter table public.prompt_versions enable row level security;
alter table public.livekit_available_stt_models enable row level security;
alter table public.livekit_available_llm_models enable row level security;
alter table public.livekit_available_voices enable row level security;
alter table public.signalwire_available_llm_models enable row level security;
alter table public.signalwire_available_stt_models enable row level security;
alter table public.signalwire_available_voices enable row level security;
