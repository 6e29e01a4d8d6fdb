import { createContext, useContext, type ReactNode } from "react";
import type { DemoConfig } from "../config";
import type { Db } from "../db";

interface AppData {
  db: Db;
  config: DemoConfig;
}

const AppDataContext = createContext<AppData | null>(null);

export function AppDataProvider({ db, config, children }: AppData & { children: ReactNode }) {
  return <AppDataContext.Provider value={{ db, config }}>{children}</AppDataContext.Provider>;
}

export function useAppData(): AppData {
  const value = useContext(AppDataContext);
  if (!value) throw new Error("useAppData outside AppDataProvider");
  return value;
}

export function useDb(): Db {
  return useAppData().db;
}
