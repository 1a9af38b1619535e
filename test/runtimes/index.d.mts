// Types of index.mjs for the type-checked suites.
export declare const runtimes: Record<string, string>;
export declare function runtime(label: string): string;
