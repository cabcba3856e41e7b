-- livekit-fallback: ranked backup models.
--
-- A catalogue row with a backup_rank is a backup of its platform and model kind:
-- when the active model cannot be built, or fails mid-call, the agent moves to
-- the backups in rank order (lowest first). NULL (the default) means "not a
-- backup". The active row may carry a rank too; it is left out of its own chain.
-- Idempotent: safe to apply more than once.

alter table public.livekit_available_stt_models    add column if not exists backup_rank integer;
alter table public.livekit_available_llm_models    add column if not exists backup_rank integer;
alter table public.livekit_available_voices        add column if not exists backup_rank integer;
alter table public.signalwire_available_stt_models add column if not exists backup_rank integer;
alter table public.signalwire_available_llm_models add column if not exists backup_rank integer;
alter table public.signalwire_available_voices     add column if not exists backup_rank integer;

do $$
declare
    t text;
begin
    foreach t in array array[
        'livekit_available_stt_models', 'livekit_available_llm_models', 'livekit_available_voices',
        'signalwire_available_stt_models', 'signalwire_available_llm_models', 'signalwire_available_voices'
    ] loop
        if not exists (select 1 from pg_constraint where conname = t || '_backup_rank_positive') then
            execute format(
                'alter table public.%I add constraint %I check (backup_rank is null or backup_rank >= 1)',
                t, t || '_backup_rank_positive'
            );
        end if;
        execute format(
            'create index if not exists %I on public.%I (backup_rank) where backup_rank is not null',
            t || '_backup_rank', t
        );
    end loop;
end
$$;
