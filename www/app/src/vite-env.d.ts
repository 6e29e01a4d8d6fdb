/// <reference types="vite/client" />
interface ImportMetaEnv {
  readonly VITE_RECORD_SYNC_URL?: string;
  readonly VITE_RECORD_SYNC_ANON_KEY?: string;
  readonly VITE_RECORD_SYNC_TOKEN?: string;
  readonly VITE_RECORD_SYNC_MODE?: string;
}
