// Command equilateral is the single binary of Equilateral. Run
// `equilateral --help` for the commands; each has its own --help.
package main
