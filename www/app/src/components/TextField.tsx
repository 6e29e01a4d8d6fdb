import { useEffect, useRef, useState, type InputHTMLAttributes } from "react";

/**
 * A text input that keeps what the person types in its own state (so the caret never jumps while the stored
 * value catches up) and reports every change; it takes the stored value again whenever it is not focused.
 */
export function TextField({
  value,
  onValue,
  multiline = false,
  ...rest
}: { value: string; onValue: (value: string) => void; multiline?: boolean } & Omit<InputHTMLAttributes<HTMLInputElement>, "value" | "onChange">) {
  const [text, setText] = useState(value);
  const focused = useRef(false);
  useEffect(() => {
    if (!focused.current) setText(value);
  }, [value]);
  const common = {
    value: text,
    onFocus: () => (focused.current = true),
    onBlur: () => {
      focused.current = false;
    },
  };
  if (multiline) {
    return (
      <textarea
        {...common}
        aria-label={rest["aria-label"]}
        placeholder={rest.placeholder}
        className={rest.className}
        rows={2}
        onChange={(e) => {
          setText(e.target.value);
          onValue(e.target.value);
        }}
      />
    );
  }
  return (
    <input
      {...rest}
      {...common}
      onChange={(e) => {
        setText(e.target.value);
        // A number field being cleared to type a new value is not a value yet.
        if (rest.type === "number" && (e.target.value === "" || !Number.isFinite(Number(e.target.value)))) return;
        onValue(e.target.value);
      }}
    />
  );
}
